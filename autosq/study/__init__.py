"""Studies: Pareto maths (pure), the stored records, evaluation of a candidate, storage, the
search run, its result, refinement, comparison across devices and export.

(Not ``autosq.search``: that name is the public :func:`autosq.search` function, which a
subpackage of the same name would be shadowed by.)"""
