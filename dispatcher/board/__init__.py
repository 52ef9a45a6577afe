"""Redis: key names and Lua scripts (:mod:`.scripts`), and the board that runs them."""
