"""Global linking as an integer linear program, solved with motile (ilpy + SCIP).

Every detection is kept. The objective sums the cost of each selected one-to-one link,
a cost for every track that starts or ends inside the movie, and for every division the
cost of its (parent, daughter, daughter) candidate. A cell has at most one parent and
at most two children, and two children are only allowed as a candidate division.

By default the problem is first reduced exactly (:mod:`~cellsight.core.tracking.reduce`):
links and divisions no optimum needs are dropped, independent parts without candidate
divisions are solved as assignment problems, parts with a few candidate divisions by
trying each combination, and only the larger parts go to motile and SCIP.
``reduce=False`` hands the whole problem to the solver.
"""

from collections.abc import Iterable

import numpy as np

from cellsight.core.progress import Cancelled, ProgressEvent, never_stop, no_progress
from cellsight.core.tracking.candidates import CandidateGraph
from cellsight.core.tracking.reduce import MAX_ENUMERATED, reduce_problem

PRESOLVE_ROUNDS = 3
VERBOSE = False


class SolverUnavailableError(RuntimeError):
    """The ILP solver (motile with ilpy + SCIP) is not installed."""


def _import_motile():
    try:
        import ilpy
        import motile
        import motile.constraints
        import motile.costs
        import motile.variables
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SolverUnavailableError(
            "The ILP solver needs the 'motile' package (with ilpy and PySCIPOpt): "
            "pip install motile pyscipopt; or use the greedy solver (--solver greedy)."
        ) from exc
    return motile, ilpy


def _model_classes(motile, ilpy):
    """Cost and variable classes, defined once motile is importable."""
    from motile.variables import EdgeSelected, NodeSelected, NodeSplit

    class DivisionPair(motile.variables.Variable):
        """1 iff both edges of a candidate division are selected."""

        @staticmethod
        def instantiate(solver):
            return list(solver.division_costs)

        @staticmethod
        def instantiate_constraints(solver) -> Iterable:
            pairs = solver.get_variables(DivisionPair)
            edges = solver.get_variables(EdgeSelected)
            split = solver.get_variables(NodeSplit)
            by_parent: dict = {}
            for key in pairs:
                parent, a, b = key
                g, xa, xb = pairs[key], edges[(parent, a)], edges[(parent, b)]
                yield g <= xa
                yield g <= xb
                yield g >= xa + xb - 1
                by_parent.setdefault(parent, []).append(g)
            for node in solver.graph.nodes:
                groups = by_parent.get(node, [])
                if len(solver.graph.next_edges[node]) >= 2:
                    # two selected children must form a candidate division
                    yield split[node] - sum(groups, 0 * split[node]) <= 0

    class DivisionCost(motile.costs.Cost):
        """Cost of each candidate division that is used."""

        def __init__(self):
            self.weight = motile.costs.Weight(1.0)

        def apply(self, solver) -> None:
            for key, index in solver.get_variables(DivisionPair).items():
                solver.add_variable_cost(index, solver.division_costs[key], self.weight)

    class SelectAll(motile.constraints.Constraint):
        """Keep every detection."""

        def instantiate(self, solver):
            selected = solver.get_variables(NodeSelected)
            for node in solver.graph.nodes:
                yield selected[node] == 1

    return DivisionCost, SelectAll


def _track_graph(motile, candidates: CandidateGraph, edges: np.ndarray):
    """The motile TrackGraph of the given candidate links and the detections they join."""
    import networkx as nx

    graph = nx.DiGraph()
    src, dst = candidates.source[edges], candidates.target[edges]
    t = candidates.detections.t
    nodes = np.unique(np.concatenate([src, dst]))
    graph.add_nodes_from((n, {"t": int(t[n])}) for n in nodes.tolist())
    graph.add_edges_from(
        (s, d, {"cost": c})
        for s, d, c in zip(src.tolist(), dst.tolist(), candidates.cost[edges].tolist(), strict=True)
    )
    return motile.TrackGraph(graph, frame_attribute="t")


def _division_costs(candidates: CandidateGraph, edges, divisions: np.ndarray) -> dict:
    """Cost of each usable division, net of the link costs its two edges already pay."""
    out = {}
    triples = candidates.divisions[divisions].tolist()
    for (p, a, b), cost in zip(triples, candidates.division_cost[divisions].tolist(), strict=True):
        if (p, a) in edges and (p, b) in edges:
            out[(p, a, b)] = cost - edges[(p, a)]["cost"] - edges[(p, b)]["cost"]
    return out


def _solve(solver, ilpy, time_limit: float):
    """Motile's ``Solver.solve`` with SCIP's presolve kept short.

    SCIP's exhaustive presolve takes most of the time on tracking problems whose LP
    relaxation is nearly integral; a fast presolve gives the same optimum sooner.
    """
    objective = ilpy.Objective(solver.num_variables)
    for i, c in enumerate(solver.costs):
        objective.set_coefficient(i, c)
    ilp = ilpy.Solver(
        solver.num_variables,
        ilpy.VariableType.Binary,
        variable_types=solver.variable_types,
        preference=ilpy.Preference.Scip,
    )
    ilp.set_objective(objective)
    ilp.set_constraints(solver.constraints)
    ilp.set_num_threads(1)
    ilp.set_timeout(time_limit)
    ilp.set_verbose(VERBOSE)
    model = ilp.native_model()
    if hasattr(model, "setIntParam"):  # pyscipopt.Model
        model.setIntParam("presolving/maxrounds", PRESOLVE_ROUNDS)
    return ilp.solve()


def _solve_part(candidates, edges, divisions, time_limit, progress, should_stop):
    """Links chosen by motile + SCIP among the given candidate links and divisions."""
    motile, ilpy = _import_motile()
    from motile.variables import EdgeSelected

    usable = {ilpy.SolverStatus.OPTIMAL, ilpy.SolverStatus.TIMELIMIT, ilpy.SolverStatus.SUBOPTIMAL}
    progress(ProgressEvent(1, 4, "building the ILP"))
    track_graph = _track_graph(motile, candidates, edges)
    solver = motile.Solver(track_graph)
    solver.division_costs = _division_costs(candidates, track_graph.edges, divisions)
    division, select_all = _model_classes(motile, ilpy)
    solver.add_constraint(select_all())
    solver.add_constraint(motile.constraints.MaxParents(1))
    solver.add_constraint(motile.constraints.MaxChildren(2))
    solver.add_cost(motile.costs.NodeAppearCost(constant=candidates.appear_cost))
    solver.add_cost(motile.costs.NodeDisappearCost(constant=candidates.appear_cost))
    solver.add_cost(motile.costs.EdgeSelectedCost(attribute="cost"))
    solver.add_cost(division())
    if should_stop():
        raise Cancelled(partial=None)
    progress(ProgressEvent(2, 4, "solving the ILP (SCIP)"))
    solution = _solve(solver, ilpy, time_limit)
    values = np.asarray(solution.variable_values, np.float64)
    if values.size == 0 or solution.status not in usable:
        raise RuntimeError(f"The ILP solver found no solution (status: {solution.status.value}).")
    chosen = [
        e for e, var in solver.get_variables(EdgeSelected).items() if values[var.index] > 0.5
    ]
    return np.asarray(chosen, np.int64).reshape(-1, 2)


def solve_ilp(
    candidates: CandidateGraph,
    time_limit: float = 120.0,
    progress=no_progress,
    should_stop=never_stop,
    reduce: bool = True,
    max_enumerated: int = MAX_ENUMERATED,
    stats: dict | None = None,
) -> np.ndarray:
    """Select links by solving the global ILP with motile.

    Parameters
    ----------
    candidates : CandidateGraph
    time_limit : float
        Seconds SCIP may use; the best solution found by then is returned.
    progress, should_stop : callable
        See :mod:`cellsight.core.progress`; a stop is honoured before the solve.
    reduce : bool
        Solve the parts that need no ILP exactly without it (same optimum, much
        faster); False sends the whole problem to SCIP.
    max_enumerated : int
        With ``reduce``, independent parts with up to this many candidate divisions
        are solved by trying every combination; larger parts go to SCIP (0 = every
        part with a candidate division goes to SCIP).
    stats : dict, optional
        Filled with the sizes of the reduced problem.

    Returns
    -------
    ndarray of int, shape (L, 2)
        Selected links ``(source, target)`` as detection rows, sorted.

    Raises
    ------
    SolverUnavailableError
        If motile / ilpy / SCIP is not installed.
    RuntimeError
        If the solver finds no feasible solution.
    """
    _import_motile()
    progress(ProgressEvent(0, 4, "reducing the ILP"))
    if reduce:
        part = reduce_problem(candidates, max_enumerated)
        links, edges, divisions = [part.links], part.edges, part.divisions
        if stats is not None:
            stats.update(part.stats)
    else:
        links = []
        edges, divisions = np.arange(len(candidates)), np.arange(len(candidates.divisions))
    if len(edges):
        links.append(
            _solve_part(candidates, edges, divisions, time_limit, progress, should_stop)
        )
    elif should_stop():
        raise Cancelled(partial=None)
    progress(ProgressEvent(4, 4, "ILP solved"))
    chosen = np.concatenate(links) if links else np.zeros((0, 2), np.int64)
    return chosen[np.lexsort((chosen[:, 1], chosen[:, 0]))].reshape(-1, 2)
