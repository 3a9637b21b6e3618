"""Every write of the predictions app, one module per concern.

- ``settings``: an institution's prediction settings.
- ``requests``: asking for a retrain or rescore (and the rescore after an import).
- ``training``: training a candidate version and the promotion gate it goes through.
- ``promotion``: an admin's decisions on a version (promote, reject, roll back).
- ``scoring``: a rescore run, from choosing the students to the standing webhooks.
- ``chunk_store``: storing one scored chunk, crash-safely, and overlapping reads and writes.
- ``ranking``: rank, percentile, band and flag of every current student.
- ``schedules``: the institution's beat entries.
- ``feedback``: advisors' "this risk looks wrong" (it never changes a score).
- ``jobs``: the lifecycle of a retrain or rescore job, shared by the worker and the command.
"""
