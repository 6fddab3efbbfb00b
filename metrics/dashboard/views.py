"""Dashboard pages. Views gather data through selectors and queries, hand it to the figure
builders (figures.py) and CSV tables (csv_tables.py), and render."""

from dataclasses import replace
from functools import wraps
from pathlib import Path
from urllib.parse import urlencode

import plotly
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from metrics import permissions, selectors
from metrics.analysis.pricing import aged_out_sessions, what_if_cost
from metrics.dashboard import (
    comparisons,
    csv_tables,
    figures,
    operation_trends,
    price_history,
    queries,
    session_compare,
    session_search,
    spend,
    takes,
)
from metrics.dashboard.estimates import progress_of
from metrics.dashboard.failures import failure_of
from metrics.dashboard.filters import PERIODS, DashboardFilters, choices, query_string
from metrics.dashboard.forms import AnnotationForm, TimeZoneForm
from metrics.dashboard.parallelism import parallel_speedup
from metrics.dashboard.quantiles import QUARTILES
from metrics.dashboard.stored_summary import stored_summary_lines
from metrics.dashboard.summary import INLINE_OPERATIONS, session_summary
from metrics.dashboard.timezones import current_zone_name, save_time_zone
from metrics.dashboard.unpriced import with_unpriced_calls
from metrics.dashboard.waterfall import GROUP_DETAILS, group_operations, session_waterfall
from metrics.links import session_url
from metrics.models import (
    DEFAULT_PROJECT_SLUG,
    Annotation,
    Episode,
    ModelPrice,
    Project,
)
from metrics.producer_units import per_unit

LATEST_SESSIONS = queries.LATEST_SESSIONS
EPISODES_PER_PAGE = 50
EPISODE_RUNS_SHOWN = 200
MAX_COMPARED = 8
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _current_project(request: HttpRequest) -> Project:
    """The project named by ``?project=``, else the default one, else the person's first.

    Only projects the person is a member of: another project's slug is a 404, the same
    answer as a slug that does not exist, so the page does not tell which projects exist.
    """
    visible = permissions.visible_projects(request.user)
    slug = request.GET.get("project")
    if slug:
        return get_object_or_404(visible, slug=slug)
    project = visible.filter(slug=DEFAULT_PROJECT_SLUG).first() or visible.first()
    if project is None:
        raise PermissionDenied("You are not a member of any project yet: ask an admin.")
    return project


def dashboard_view(view):
    """Login required, then the dashboard permission (403 for a user without a role)."""

    @login_required
    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not permissions.can_view_dashboard(request.user):
            raise PermissionDenied("You need the Producers or Editors role to see this.")
        return view(request, *args, **kwargs)

    return guarded


def _page(request: HttpRequest, **extra) -> dict:
    """What every page shows around its content: project, switcher, filters."""
    project = _current_project(request)
    filters = DashboardFilters.from_query(request.GET)
    projects = list(
        permissions.visible_projects(request.user).order_by("name").values("slug", "name")[:100]
    )
    return {
        "project": project,
        "projects": projects if len(projects) > 1 else [],
        "filters": filters,
        "filter_choices": choices(project, filters),
        "periods": [(key, label) for key, (label, _) in PERIODS.items()],
        "qs": query_string(project, filters),
        "project_qs": query_string(project, DashboardFilters()),
        "plotly_version": plotly.__version__,
        **extra,
    }


def _wants_csv(request: HttpRequest) -> bool:
    return request.GET.get("export") == "csv"


@require_GET
def plotly_js(request: HttpRequest) -> FileResponse:
    """plotly.min.js from the installed plotly package: no CDN, cached for a year.

    Pages link to it with the package version in the query string, so an upgrade of the
    plotly package changes the URL and no browser keeps the old file.
    """
    response = FileResponse(PLOTLY_JS.open("rb"), content_type="text/javascript")
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


# --- overview -------------------------------------------------------------------------------


@dashboard_view
def overview(request: HttpRequest) -> HttpResponse:
    ctx = _page(request)
    project, filters = ctx["project"], ctx["filters"]
    if _wants_csv(request):
        return csv_tables.sessions_csv(queries.latest_sessions(project, filters, limit=10_000))
    trends = queries.episode_trends(project, filters)
    ctx.update(
        kpis=queries.kpis(project, filters),
        sessions=queries.latest_sessions(project, filters),
        running=progress_of(queries.running_sessions(project, filters), project=project),
        has_any_session=project.sessions.exists(),
        charts=figures.overview_figures(trends, queries.cost_by_episode_and_model(trends),
                                        ctx["qs"]) if trends else {},
    )
    return render(request, "metrics/overview.html", ctx)


# --- episodes -------------------------------------------------------------------------------


@dashboard_view
def episodes(request: HttpRequest) -> HttpResponse:
    ctx = _page(request)
    project, filters = ctx["project"], ctx["filters"]
    sort = queries.normalise_sort(request.GET.get("sort", queries.DEFAULT_EPISODE_SORT))
    search = request.GET.get("q", "").strip()[:128]
    if _wants_csv(request):
        return csv_tables.episodes_csv(
            queries.episode_table(project, filters, sort=sort, search=search))
    page = queries.episode_table_page(project, filters, sort=sort, search=search,
                                      number=request.GET.get("page"),
                                      per_page=EPISODES_PER_PAGE)
    ctx.update(
        page=page,
        rows=page.rows,
        sort=sort,
        search=search,
        sort_links=_sort_links(ctx["qs"], sort, search),
        keep=[("sort", sort)] + ([("q", search)] if search else []),
        has_any_session=project.sessions.exists(),
    )
    return render(request, "metrics/episodes.html", ctx)


def _sort_links(qs: str, sort: str, search: str) -> dict[str, str]:
    """For each column, the link that sorts by it (descending first, then ascending)."""
    base = qs + ("&" if qs else "?")
    if search:
        base += urlencode({"q": search}) + "&"
    links = {}
    for key in queries.EPISODE_SORTS:
        target = key if sort == f"-{key}" else f"-{key}"
        links[key] = f"{base}sort={target}"
    return links


def _requested_codes(request: HttpRequest) -> list[str]:
    """?episodes=a,b or ?episodes=a&episodes=b (the table's check boxes), order kept."""
    codes = []
    for value in request.GET.getlist("episodes"):
        codes += [code.strip() for code in value.split(",") if code.strip()]
    return list(dict.fromkeys(codes))


@dashboard_view
def compare(request: HttpRequest) -> HttpResponse:
    ctx = _page(request)
    project, filters = ctx["project"], ctx["filters"]
    codes = _requested_codes(request)
    if request.GET.get("order") == "code":  # ticked in the table: compare in code order
        codes.sort()
    too_many = len(codes) > MAX_COMPARED
    codes = codes[:MAX_COMPARED]
    comparison = comparisons.compare_episodes(
        project, filters, codes, baseline=request.GET.get("baseline", "")
    )
    present = comparison.codes
    ordered = [comparison.reference] + [c for c in present if c != comparison.reference] \
        if present else []
    others = ordered[1:]
    deltas = comparisons.deltas(comparison, others)
    if _wants_csv(request):
        return csv_tables.deltas_csv(comparison.reference, others, deltas)
    ctx.update(
        codes=codes, present=ordered, missing=[c for c in codes if c not in present],
        too_many=too_many, max_compared=MAX_COMPARED, comparison=comparison, others=others,
        deltas=deltas, totals=[comparison.totals[c] for c in ordered],
        episodes_param=",".join(codes),
        keep=[("episodes", ",".join(codes))]
        + ([("baseline", comparison.reference)] if request.GET.get("baseline") else []),
        charts=figures.comparison_figures(comparison, ordered, ctx["qs"]) if present else {},
    )
    return render(request, "metrics/compare.html", ctx)


@dashboard_view
def episode_detail(request: HttpRequest, code: str) -> HttpResponse:
    ctx = _page(request)
    project, filters = ctx["project"], ctx["filters"]
    episode = get_object_or_404(Episode, project=project, code=code)
    runs = queries.episode_runs(project, filters, episode.pk)
    if _wants_csv(request):
        return csv_tables.sessions_csv(
            runs.select_related("episode").order_by("-started_at", "-pk"))
    shown = list(with_unpriced_calls(runs).select_related("episode", "project")
                 .order_by("-started_at", "-pk")[:EPISODE_RUNS_SHOWN])
    ops = queries.self_time_per_run(runs)
    take = _episode_take(runs, episode)
    chronological = list(reversed(shown))
    ctx.update(
        episode=episode,
        all_runs_qs=query_string(project, replace(filters, period="all")),
        runs=shown,
        run_count=runs.count() if len(shown) == EPISODE_RUNS_SHOWN else len(shown),
        extremes=queries.best_and_worst(runs),
        take=take,
        take_units=per_unit(take) if take else None,
        budgets=queries.budget_summary(runs),
        operations=ops,
        charts=figures.episode_figures(chronological, ops, ctx["project_qs"]) if shown else {},
    )
    return render(request, "metrics/episode_detail.html", ctx)


def _episode_take(runs, episode: Episode):
    pk = takes.take_ids(runs).get(episode.pk)
    return runs.filter(pk=pk).first() if pk else None


# --- sessions -------------------------------------------------------------------------------


def _session_or_404(request: HttpRequest, external_id: str):
    project = _current_project(request)
    session = selectors.session_by_external_id(project=project, external_id=external_id)
    if session is None:
        raise Http404("No such session in this project")
    return project, session


SESSIONS_PER_PAGE = 50


@dashboard_view
def sessions(request: HttpRequest) -> HttpResponse:
    """Every session in the filters: search by id, episode or tag; the cards' drill-down."""
    ctx = _page(request)
    project, filters = ctx["project"], ctx["filters"]
    text = request.GET.get("q", "").strip()[:128]
    problem = request.GET.get("problem", "")
    problem = problem if problem in session_search.PROBLEMS else ""
    sort = request.GET.get("sort", "started")
    found = session_search.search_sessions(project, filters, text=text, problem=problem,
                                           sort=sort)
    if _wants_csv(request):
        return csv_tables.sessions_csv(found[:10_000])
    page = _page_number(request)
    rows = list(found[(page - 1) * SESSIONS_PER_PAGE: page * SESSIONS_PER_PAGE + 1])
    ctx.update(
        sessions=rows[:SESSIONS_PER_PAGE], more=len(rows) > SESSIONS_PER_PAGE, page=page,
        search=text, problem=problem, problem_label=session_search.PROBLEMS.get(problem, ""),
        sort=sort, sorts=list(session_search.SORTS),
        keep=[(k, v) for k, v in (("q", text), ("problem", problem), ("sort", sort)) if v],
    )
    return render(request, "metrics/sessions.html", ctx)


@dashboard_view
def compare_sessions(request: HttpRequest) -> HttpResponse:
    """Two sessions side by side: ?s=a&s=b (the list's check boxes) or ?s=a,b."""
    ctx = _page(request)
    ids = []
    for value in request.GET.getlist("s"):
        ids += [part.strip() for part in value.split(",") if part.strip()]
    ids = list(dict.fromkeys(ids))[:2]
    comparison = session_compare.compare_sessions(ctx["project"], ids)
    ctx.update(ids=ids, comparison=comparison,
               missing=[i for i in ids if i not in comparison.units],
               rows=_side_by_side(comparison),
               charts=figures.session_comparison_figures(comparison))
    return render(request, "metrics/compare_sessions.html", ctx)


def _side_by_side(comparison) -> list[tuple[str, str, list]]:
    """(label, unit, one value per session) for the comparison table."""
    def each(get):
        return [get(s) for s in comparison.sessions]
    units = comparison.units
    return [
        ("Duration", "s", each(lambda s: s.duration_s)),
        ("Cost", "$", each(lambda s: s.cost_usd)),
        ("Unpriced calls", "", each(lambda s: s.unpriced_calls)),
        ("Cost per scene", "$", each(lambda s: units[s.external_id]["cost_per_scene_usd"])),
        ("Time per scene", "s", each(lambda s: units[s.external_id]["seconds_per_scene"])),
        ("Cost per dialogue line", "$",
         each(lambda s: units[s.external_id]["cost_per_line_usd"])),
        ("Time per dialogue line", "s",
         each(lambda s: units[s.external_id]["seconds_per_line"])),
        ("Tokens", "tokens", each(lambda s: s.total_tokens)),
        ("API calls", "", each(lambda s: s.api_calls_count)),
        ("API errors", "", each(lambda s: s.api_errors_count)),
        ("Cache hit rate", "%", each(lambda s: s.cache_hit_rate)),
    ]


def _page_number(request: HttpRequest) -> int:
    try:
        return max(1, min(int(request.GET.get("page", 1)), 10_000))
    except ValueError:
        return 1


@dashboard_view
def session_detail(request: HttpRequest, external_id: str) -> HttpResponse:
    ctx = _page(request)
    _, session = _session_or_404(request, external_id)
    if _wants_csv(request):
        return csv_tables.operations_csv(session)
    now = timezone.now()
    elapsed = session.duration_s
    if elapsed is None:
        elapsed = max(0.0, (now - session.started_at).total_seconds())
    flow = session_waterfall(session, elapsed_s=elapsed)
    report = selectors.session_report(session)
    ctx.update(
        session=session,
        failure=failure_of(session),
        units=per_unit(session),
        speedup=parallel_speedup(session),
        take=takes.take_of(session),
        can_accept_take=permissions.can_accept_take(request.user),
        unpriced_calls=report.unpriced_calls,
        price_history=price_history.session_price_history(session),
        progress=progress_of([session], project=session.project, now=now)[0]
        if not session.is_finished else None,
        waterfall=flow,
        report=report,
        bottlenecks=report.bottlenecks,
        findings=report.findings,
        regressions=report.regressions,
        slowest=report.slowest,
        by_model=[{**row, "label": queries.model_label(row["provider"], row["model"])}
                  for row in report.calls_by_model],
        cache_by_operation=report.cache_by_operation,
        cache_by_name=sorted(session.cache_by_name.items()),
        budget_checks=report.budget_checks,
        summary=session_summary(session)
        if session.operations_count <= INLINE_OPERATIONS else None,
        annotations=session.annotations.select_related("author"),
        annotation_form=AnnotationForm() if permissions.can_annotate(request.user) else None,
        # The admin enforces its own permissions (view-only users get a read-only page).
        can_admin=request.user.is_staff,
        charts=figures.session_figures(flow, elapsed_s=elapsed,
                                       external_id=session.external_id, qs=ctx["project_qs"]),
    )
    return render(request, "metrics/session_detail.html", ctx)


@require_POST
@dashboard_view
def accept_take(request: HttpRequest, external_id: str) -> HttpResponse:
    """An editor marks this run as its episode's accepted take."""
    if not permissions.can_accept_take(request.user):
        raise PermissionDenied("Only editors choose an episode's accepted take.")
    _, session = _session_or_404(request, external_id)
    if session.episode_id is None or session.status != session.Status.COMPLETED:
        messages.error(request, "Only a completed run of an episode can be its accepted take.")
    else:
        takes.accept(session)
        messages.success(request, f"{session.external_id} is now the accepted take of "
                                  f"{session.episode.code}.")
    return redirect(session_url(session))


@require_GET
@dashboard_view
def session_progress(request: HttpRequest, external_id: str) -> HttpResponse:
    """The running session's progress panel, for the page to refresh itself with."""
    _, session = _session_or_404(request, external_id)
    if session.is_finished:
        response = HttpResponse("", content_type="text/html; charset=utf-8")
        response["X-Perfmon-Finished"] = "1"  # the page reloads once to show the result
        return response
    progress = progress_of([session], project=session.project)[0]
    return render(request, "metrics/_progress.html", {"progress": progress})


@require_GET
@dashboard_view
def operation_group(request: HttpRequest, external_id: str) -> HttpResponse:
    """The operations of one group of same-named siblings, when the page opens it."""
    _, session = _session_or_404(request, external_id)
    name = request.GET.get("name", "")[:200]
    parent = request.GET.get("parent", "")[:64]
    rows = group_operations(session, parent=parent, name=name)
    return render(request, "metrics/_group.html", {
        "name": name, "rows": rows, "limit": GROUP_DETAILS})


@require_GET
@dashboard_view
def running_fragment(request: HttpRequest) -> HttpResponse:
    """The overview's running sessions table, refreshed in place."""
    ctx = _page(request)
    running = progress_of(queries.running_sessions(ctx["project"], ctx["filters"]),
                          project=ctx["project"])
    return render(request, "metrics/_running_block.html", {**ctx, "running": running})


@dashboard_view
def session_summary_text(request: HttpRequest, external_id: str) -> HttpResponse:
    _, session = _session_or_404(request, external_id)
    if session.operations_count > INLINE_OPERATIONS or session.detail_pruned_at is not None:
        return StreamingHttpResponse(
            stored_summary_lines(session), content_type="text/plain; charset=utf-8"
        )
    return HttpResponse(session_summary(session), content_type="text/plain; charset=utf-8")


@require_POST
@dashboard_view
def add_annotation(request: HttpRequest, external_id: str) -> HttpResponse:
    if not permissions.can_annotate(request.user):
        raise PermissionDenied("You may not annotate sessions.")
    _, session = _session_or_404(request, external_id)
    form = AnnotationForm(request.POST)
    if form.is_valid():
        note = Annotation.objects.create(session=session, author=request.user,
                                         text=form.cleaned_data["text"])
        # In the admin's history like every other edit, so who noted what stays visible.
        LogEntry.objects.log_actions(
            user_id=request.user.pk, queryset=[note], action_flag=ADDITION,
            change_message="Added from the dashboard's session page.", single_object=True,
        )
        messages.success(request, "Annotation added.")
    else:
        messages.error(
            request, f"An annotation needs some text (at most {Annotation.MAX_CHARS:,} characters)."
        )
    return redirect(session_url(session))


# --- preferences ----------------------------------------------------------------------------


@dashboard_view
def preferences(request: HttpRequest) -> HttpResponse:
    """The person's settings: the time zone every page shows times in."""
    if request.method == "POST":
        form = TimeZoneForm(request.POST)
        if form.is_valid():
            save_time_zone(request, form.cleaned_data["time_zone"])
            messages.success(request, f"Times are now shown in {current_zone_name(request)}.")
            return redirect(_safe_next(request) or "metrics:preferences")
    else:
        form = TimeZoneForm(initial={"time_zone": request.session.get("perfmon_time_zone", "")})
    return render(request, "metrics/preferences.html", _page(
        request, form=form, zone=current_zone_name(request), site_zone=settings.TIME_ZONE,
        next=_safe_next(request) or ""))


def _safe_next(request: HttpRequest) -> str | None:
    target = request.POST.get("next") or request.GET.get("next") or ""
    return target if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()) else None


# --- operations and costs -------------------------------------------------------------------


@dashboard_view
def operations(request: HttpRequest) -> HttpResponse:
    ctx = _page(request)
    project, filters = ctx["project"], ctx["filters"]
    names = operation_trends.operation_names(project, filters)
    name = request.GET.get("name", "").strip() or (names[0] if names else "")
    durations = (operation_trends.operation_by_episode(project, filters, name) if name
                 else operation_trends.EpisodeDurations({}))
    by_episode = durations.boxes
    if _wants_csv(request):
        return csv_tables.operation_by_episode_csv(name, by_episode)
    sample = operation_trends.sample_runs(project, filters, name) if name else None
    over_time = operation_trends.operation_over_time(project, filters, name, sample) if name else []
    by_release = operation_trends.operation_by_release(sample) if name else []
    ctx.update(
        names=names, name=name, by_episode=by_episode, over_time=over_time,
        aged_out_runs=durations.aged_out_runs,
        by_release=by_release, keep=[("name", name)] if name else [],
        charts=figures.operation_figures(by_episode, over_time, by_release),
        sample_step=sample.step if sample else 1, runs_sampled=operation_trends.RUNS_SAMPLED,
        episode_rows=[{"code": code, "n": q["n"], "values": [q.get(x) for x in QUARTILES]}
                      for code, q in by_episode.items()],
    )
    return render(request, "metrics/operations.html", ctx)


COST_GROUPINGS = {"model": "model", "provider": "provider", "workflow": "workflow"}


@dashboard_view
def costs(request: HttpRequest) -> HttpResponse:
    ctx = _page(request)
    project, filters = ctx["project"], ctx["filters"]
    by = request.GET.get("by", "model")
    by = by if by in COST_GROUPINGS else "model"
    rows = spend.cost_rows(project, filters)
    models = spend.cost_by_model(rows)
    if _wants_csv(request):
        return csv_tables.costs_by_model_csv(models)
    what_if = _what_if(request, project, filters)
    ctx.update(by=by, groupings=list(COST_GROUPINGS), models=models,
               from_cost_lines=spend.from_cost_lines(filters),
               unpriced=[m for m in models if m["unpriced_calls"]],
               total_cost=sum(m["cost_usd"] for m in models),
               what_if=what_if, keep=[("by", by)],
               price_changes=price_history.recent_price_changes(project),
               other_price_changes=price_history.other_price_changes(project),
               charts=figures.cost_figures(spend.cost_over_time(rows, by), what_if, by))
    return render(request, "metrics/costs.html", ctx)


WHAT_IF_AT_CALL_TIME = "at_call"


def _what_if(request: HttpRequest, project: Project, filters: DashboardFilters) -> dict:
    priced = list(
        ModelPrice.objects.filter(valid_from__lte=timezone.now())
        .order_by("provider", "model").values_list("provider", "model").distinct()
    )
    options = [f"{provider}/{model}" for provider, model in priced]
    requested = [c.strip() for c in request.GET.get("whatif_episodes", "").split(",")
                 if c.strip()][:20]
    episodes = requested or spend.recent_episode_codes(project, filters)
    chosen = request.GET.get("whatif_model", "")
    at_call_time = request.GET.get("whatif_prices") == WHAT_IF_AT_CALL_TIME
    result = {"options": options, "episodes": ",".join(episodes), "model": chosen,
              "at_call_time": at_call_time}
    if chosen and episodes:
        provider, _, model = chosen.partition("/")
        try:
            result["rows"] = what_if_cost(project=project, episodes=episodes,
                                          provider=provider, model=model,
                                          at_call_time=at_call_time)
            result["unpriced_calls"] = sum(row.unpriced_calls for row in result["rows"])
            if at_call_time:
                result["aged_out_sessions"] = aged_out_sessions(project, episodes)
        except ModelPrice.DoesNotExist:
            result["error"] = f"There is no price for {chosen}; add one in the admin."
    return result
