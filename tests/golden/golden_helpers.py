"""Shared by the golden-test tests: a tiny scenario that passes under v1 and 3.17."""

TINY = """\
# models: v1 3.17
# A tiny scenario: one anon fault, then the page is unmapped and freed.
memcg A
fault P in A
expect A usage 1 rss 1
zap {
  unmap P
}
expect A usage 0 rss 0
"""
