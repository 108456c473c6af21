"""The explorer: why a schedule is fast.

For one workload, variant and target: the config, the scheduled loop nest as TVMScript with
the loops named after the knobs that made them, the innermost loop's assembly with its key
instructions marked, registers and spills, the bytes the kernel reads against a roofline
(``kernel``/``view``); the difference between two configs (``view.diff``); and the search space
drawn from the tuning records (``space_plots``, ``page``).
"""
