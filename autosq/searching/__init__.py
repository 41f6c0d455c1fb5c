"""The search: sampling (samplers.py), evaluating a candidate (evaluate.py: size gate, timing,
accuracy), screening by predicted latency (screening.py), the stored records (records.py) and
storages (storage.py), the search loop (run.py) and its worker processes (workers.py,
processes.py), the objectives (objectives.py) and the Pareto maths (pareto.py, pure), the
front of a study (result.py) and its refinement (refine.py).

What is made from a finished study (export, compression, comparison, the report page,
calibration) lives in :mod:`autosq.outputs`.

(Not ``autosq.search``: that name is the public :func:`autosq.search` function, which a
subpackage of the same name would shadow.)"""
