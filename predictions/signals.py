"""Signals predictions sends; higher apps connect receivers (predictions never imports them).

``rescore_finished(sender, institution, job, outcome)``: a rescore job succeeded, its
predictions and ranking committed (``outcome`` is the run's ``RescoreOutcome``). Sent by
``services.jobs.rescore_job_run`` in whichever process ran the job (a worker, or the
``train_and_score`` command), inside the institution's scope. Interventions connects a receiver
that records the flagged workload (a risk snapshot).
"""

import django.dispatch

rescore_finished = django.dispatch.Signal()

# ``model_degraded(sender, institution, version, summary)``: the live model's realised ROC-AUC
# fell below the institution's floor (predictions.services.realised); sent once per fall, after
# commit, in the institution's scope. The workspace notifies the administrators.
model_degraded = django.dispatch.Signal()
