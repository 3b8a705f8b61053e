"""Small builders for Grafana dashboard JSON (schema 39, Grafana 10/11).

Conventions of the Grafana mixins, enforced here so no dashboard can forget
them: every panel reads the ``$datasource`` variable, has a description and a
unit, and every panel and dashboard has a stable id/uid. Layout is automatic:
panels fill rows of 24 columns left to right.
"""

DS = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39
TAG = "vma-exporter"


def target(expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> dict:
    t = {"datasource": DS, "editorMode": "code", "expr": expr, "legendFormat": legend,
         "range": not instant, "instant": instant}
    if table:
        t["format"] = "table"
    return t


def steps(*pairs) -> dict:
    """Absolute thresholds: steps("green", (0.8, "orange"), (0.95, "red"))."""
    base, *rest = pairs
    return {"mode": "absolute",
            "steps": [{"color": base, "value": None}] + [{"color": c, "value": v} for v, c in rest]}


NEUTRAL = steps("text")


def override(name: str, **props) -> dict:
    """Field override by column or series name; props become Grafana properties."""
    return {"matcher": {"id": "byName", "options": name},
            "properties": [{"id": k.replace("__", "."), "value": v} for k, v in props.items()]}


def _panel(kind: str, title: str, description: str, targets: list[dict], unit: str, *,
           thresholds=None, no_value=None, overrides=(), mappings=(), decimals=None, minimum=None,
           custom=None, options=None, transformations=(), w=12, h=8) -> dict:
    if not description or not unit:
        raise ValueError(f"panel {title!r}: every panel needs a description and a unit")
    for i, t in enumerate(targets):
        t["refId"] = chr(ord("A") + i)
    defaults = {"unit": unit, "color": {"mode": "thresholds" if thresholds else "palette-classic"},
                "thresholds": thresholds or NEUTRAL, "mappings": list(mappings)}
    for key, value in (("noValue", no_value), ("decimals", decimals), ("min", minimum), ("custom", custom)):
        if value is not None:
            defaults[key] = value
    panel = {"type": kind, "title": title, "description": description, "datasource": DS,
             "fieldConfig": {"defaults": defaults, "overrides": list(overrides)},
             "options": options or {}, "targets": targets, "gridPos": {"w": w, "h": h}}
    if transformations:
        panel["transformations"] = list(transformations)
    return panel


def stat(title, description, expr, unit, legend="", *, thresholds=None, no_value=None, mappings=(),
         w=4, h=4, decimals=None, text_mode="value") -> dict:
    """One value per series; *expr* is a query, or a list of (query, legend) pairs."""
    pairs = [(expr, legend)] if isinstance(expr, str) else expr
    return _panel("stat", title, description, [target(e, lg, instant=True) for e, lg in pairs], unit,
                  thresholds=thresholds, no_value=no_value, mappings=mappings, decimals=decimals, w=w, h=h,
                  options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                           "colorMode": "value" if thresholds else "none", "graphMode": "none",
                           "textMode": text_mode, "justifyMode": "auto", "orientation": "auto"})


def timeseries(title, description, targets, unit, *, stack=False, overrides=(), thresholds=None,
               minimum=0, w=12, h=8) -> dict:
    custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 30 if stack else 0, "showPoints": "never",
              "spanNulls": False, "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    return _panel("timeseries", title, description, targets, unit, custom=custom, overrides=overrides,
                  thresholds=thresholds, minimum=minimum, w=w, h=h,
                  options={"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True,
                                      "calcs": ["lastNotNull", "max"]},
                           "tooltip": {"mode": "multi", "sort": "desc"}})


def table(title, description, targets, unit, *, columns: dict[str, str], sort_by: str,
          descending=True, hidden=("job", "instance"), overrides=(), thresholds=None, w=12, h=8) -> dict:
    """Instant queries merged into one row per series; *columns* maps field -> header, in order.

    Fields not named are dropped (Time, container ids...), so the table shows what
    matters and nothing churns when a target label is added. *hidden* fields stay
    in the data, undisplayed, for data links (``${__data.fields.job}``).
    """
    for t in targets:
        t.update(instant=True, range=False, format="table")
    hidden = [f for f in hidden if f not in columns]
    names = list(columns) + hidden
    overrides = [*overrides, *(override(f, custom__hidden=True) for f in hidden)]
    transformations = [
        {"id": "merge", "options": {}},
        {"id": "filterFieldsByName", "options": {"include": {"names": names}}},
        {"id": "organize", "options": {"indexByName": {n: i for i, n in enumerate(names)},
                                       "renameByName": columns}},
    ]
    return _panel("table", title, description, targets, unit, thresholds=thresholds, overrides=overrides,
                  transformations=transformations, w=w, h=h,
                  options={"showHeader": True, "cellHeight": "sm",
                           "footer": {"show": False, "reducer": ["sum"], "fields": ""},
                           "sortBy": [{"displayName": columns[sort_by], "desc": descending}]})


def gauge_cell(header: str, unit: str, thresholds: dict) -> dict:
    """A table column drawn as a coloured bar gauge (share of a limit)."""
    return {"matcher": {"id": "byName", "options": header},
            "properties": [{"id": "unit", "value": unit}, {"id": "thresholds", "value": thresholds},
                           {"id": "color", "value": {"mode": "thresholds"}},
                           {"id": "custom.cellOptions", "value": {"type": "gauge", "mode": "basic"}},
                           {"id": "max", "value": 1}, {"id": "min", "value": 0}]}


def link(header: str, title: str, url: str) -> dict:
    return override(header, links=[{"title": title, "url": url}])


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": 24, "h": 1}}


def layout(panels: list[dict]) -> list[dict]:
    """Give every panel its id and position: left to right, wrapping at 24 columns."""
    x = y = line_h = 0
    for pid, p in enumerate(panels, start=1):
        pos = p["gridPos"]
        if p["type"] == "row" or x + pos["w"] > 24:
            x, y, line_h = 0, y + line_h, 0
        pos.update(x=x, y=y)
        p["id"] = pid
        x += pos["w"]
        line_h = max(line_h, pos["h"])
        if p["type"] == "row":
            x, y, line_h = 0, y + 1, 0
    return panels


# --- Variables -----------------------------------------------------------------------------------

def datasource_var() -> dict:
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "includeAll": False, "multi": False, "options": [], "refresh": 1,
            "regex": ""}


def query_var(name: str, label: str, query: str, *, hide: int = 0, multi: bool = False,
              include_all: bool = False) -> dict:
    """A label_values() variable; with *include_all*, "All" means the regex ".*"."""
    v = {"name": name, "label": label, "type": "query", "datasource": DS, "query": query, "definition": query,
         "current": {}, "hide": hide, "multi": multi, "includeAll": include_all, "options": [],
         "refresh": 2, "regex": "", "sort": 1}
    if include_all:
        v["allValue"] = ".*"
        v["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return v


def dashboard(uid: str, title: str, description: str, variables: list[dict], panels: list[dict]) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": [TAG],
        "editable": True,
        "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "timezone": "",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "annotations": {"list": []},
        "links": [{"title": "vma-exporter", "type": "dashboards", "tags": [TAG], "asDropdown": True,
                   "includeVars": True, "keepTime": True}],
        "templating": {"list": variables},
        "panels": layout(panels),
    }
