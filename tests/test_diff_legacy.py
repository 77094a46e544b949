"""`memcglang diff --models legacy,3.17`: what the rewrite changed, as SEMANTICS §4.3 and §6
describe it (migration, swap-out, batching, the cost counters)."""

from __future__ import annotations

from pathlib import Path

from memcglang import cli

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"




def run_diff(name: str, models: str = "legacy,3.17", capsys=None) -> str:
    assert cli.main(["diff", str(SCENARIOS / name), "--models", models]) == 0
    return capsys.readouterr().out


def test_migration_prepare_end_against_one_transfer(capsys):
    text = run_diff("e4_migrate.mcg", capsys=capsys)
    block = text[text.index(": migrate O to N"):]
    block = block[: block.index("\n= ")]
    assert "A| mem_cgroup_prepare_migration(O, N)" in block
    assert "A|   O.flags: USED -> USED|MIGRATION" in block
    assert "A| note: O is under migration (PCG_MIGRATION): not uncharged" in block
    assert "A| mem_cgroup_end_migration(O, N, ok)" in block
    assert "B| mem_cgroup_migrate(O, N)" in block
    assert "A.pgpgin A 2 B 1" in block and "cost.pc_lock A 6 B 0" in block


def test_swapout_direction_guess_against_mem_cgroup_swapout(capsys):
    text = run_diff("e3_swap_out_in.mcg", capsys=capsys)
    assert "A| mem_cgroup_uncharge_swapcache(P, SWAPOUT)" in text
    assert "B| mem_cgroup_swapout(P, E)" in text
    assert "A| mem_cgroup_uncharge_swapcache(Q, DROP)" in text


def test_batching_at_page_remove_rmap_against_uncharge_list(capsys):
    text = run_diff("batch_window_munmap.mcg", capsys=capsys)
    assert "A| mem_cgroup_uncharge_page(P0, ANON)" in text
    assert "B| mem_cgroup_uncharge_list(" in text


def summary_row(text: str, field: str) -> list[str]:
    return text[text.rindex(f"{field} "):].split("\n", 1)[0].split()


def test_munmap_of_1000_pages_costs(capsys):
    """The seed review's point in numbers: legacy's page_cgroup lock per commit and per
    uncharge and one flush of its window; 3.17.4's uncharge_list once per 14-page chunk of
    free_pages_and_swap_cache (73 chunks); v1's per-page uncharges."""
    text = run_diff("legacy/f3_munmap_1000.mcg", capsys=capsys)
    assert summary_row(text, "cost.res_counter")[-2:] == ["2002", "2146"]
    assert summary_row(text, "cost.pc_lock")[-2:] == ["2000", "0"]
    assert summary_row(text, "cost.batches")[-2:] == ["1", "73"]
    text = run_diff("legacy/f3_munmap_1000.mcg", "v1,3.17", capsys=capsys)
    assert summary_row(text, "cost.res_counter")[-2:] == ["4000", "2146"]


def test_the_tour_diffs_cleanly(capsys):
    assert cli.main(["diff", "--models", "legacy,3.17"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# memcglang diff 1: tour.mcg, models legacy and 3.17")
    assert "only legacy: expect A rss 1" in text
