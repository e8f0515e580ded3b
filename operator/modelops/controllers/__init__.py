"""Kopf handlers, and all the I/O the operator does. Every controller follows one shape:

1. fetch: the object and what it depends on, as the `api` models;
2. measure: what only I/O can tell (the pods' metrics, Prometheus, a Job's pods, a Secret);
3. plan: a pure function of `resources` turns those into what to do and the new status model;
4. apply: owned children through `kube.apply_child`/`delete_child`, new objects through `kube.create`;
5. status: `kube.write_status`, one merge patch of what changed (none when nothing did);
6. events: `events.tell`, for what the plan says people should hear.

What an object needs between reconciles lives in its Kopf memo, never in a module global; what the operator knows of
the children it applied is `kube.OWNED` (fed by the watches, it saves re-reading and re-writing unchanged children),
and what the watches know of related objects (a model's versions) is read from Kopf's indexes (`indexes`). A
ModelDeployment, and a ModelVersion's `servedBy`, are read from the watch too, or from the answer to this process's
own last write, whichever is newer (`latest`); a status computed from them is written only if the object is still as
read.

Handlers that mostly find nothing to do are asynchronous and only queue their API work (`workqueue`): a
ModelDeployment's reconcile, a ModelVersion's `servedBy`. The handler returns at once, and an object waits in the
queue once, however many events asked for it meanwhile, as in controller-runtime's work queue; a queue hands the
threads at most 20 works at once, taking turns between namespaces. The other handlers are synchronous, and Kopf runs
them on the same handler threads (`settings.HANDLER_THREADS`).
"""
