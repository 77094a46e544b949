"""The .mcg language: grammar -> AST -> resolve -> run. Knows the engine, not the screen."""
