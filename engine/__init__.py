"""The run engine: a campaign's calendar, its settlement checkpoints, the `run --until`
workflow, the trace behind `explain`, and the replay behind `verify`.

It sits between the language (`points.dsl`, which turns rules text into plans) and the
ledger (`points.ledger`, which owns every posting rule): the engine decides *when* a plan
is evaluated and *what* it is owed, and asks the ledger to write it.
"""
