// Small builders for Grafana dashboard JSON (schema 39, Grafana 10/11), plain jsonnet.
//
// Conventions of the Grafana mixins, enforced here so no dashboard can forget them: every
// panel reads the $datasource variable, has a description and a unit, and every panel and
// dashboard has a stable id/uid. Layout is automatic: panels fill rows of 24 columns left
// to right.
local ds = { type: 'prometheus', uid: '${datasource}' };

local steps(base, pairs=[]) = {
  mode: 'absolute',
  steps: [{ color: base, value: null }] + [{ color: p[1], value: p[0] } for p in pairs],
};

// A field override by column or series name; props: Grafana property id -> value.
local override(name, props) = {
  matcher: { id: 'byName', options: name },
  properties: [{ id: k, value: props[k] } for k in std.objectFields(props)],
};

local target(expr, legend='', instant=false) = {
  datasource: ds,
  editorMode: 'code',
  expr: expr,
  legendFormat: legend,
  range: !instant,
  instant: instant,
};

local panel(kind,
            title,
            description,
            targets,
            unit,
            thresholds=null,
            noValue=null,
            overrides=[],
            mappings=[],
            decimals=null,
            minimum=null,
            custom=null,
            options={},
            transformations=[],
            w=12,
            h=8) =
  assert description != '' && unit != '' : 'panel %s: every panel needs a description and a unit' % title;
  {
    type: kind,
    title: title,
    description: description,
    datasource: ds,
    fieldConfig: {
      defaults: {
        unit: unit,
        color: { mode: if thresholds != null then 'thresholds' else 'palette-classic' },
        thresholds: if thresholds != null then thresholds else steps('text'),
        mappings: mappings,
        [if noValue != null then 'noValue']: noValue,
        [if decimals != null then 'decimals']: decimals,
        [if minimum != null then 'min']: minimum,
        [if custom != null then 'custom']: custom,
      },
      overrides: overrides,
    },
    options: options,
    targets: [targets[i] { refId: std.char(std.codepoint('A') + i) } for i in std.range(0, std.length(targets) - 1)],
    gridPos: { w: w, h: h },
    [if transformations != [] then 'transformations']: transformations,
  };

{
  datasource:: ds,
  steps:: steps,
  override:: override,
  target:: target,

  // One value per series; expr is a query, or a list of [query, legend] pairs.
  stat(title,
       description,
       expr,
       unit,
       legend='',
       thresholds=null,
       noValue=null,
       mappings=[],
       w=4,
       h=4,
       decimals=null,
       textMode='value')::
    local pairs = if std.isString(expr) then [[expr, legend]] else expr;
    panel('stat',
          title,
          description,
          [target(p[0], p[1], instant=true) for p in pairs],
          unit,
          thresholds=thresholds,
          noValue=noValue,
          mappings=mappings,
          decimals=decimals,
          w=w,
          h=h,
          options={
            reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
            colorMode: if thresholds != null then 'value' else 'none',
            graphMode: 'none',
            textMode: textMode,
            justifyMode: 'auto',
            orientation: 'auto',
          }),

  timeseries(title,
             description,
             targets,
             unit,
             stack=false,
             overrides=[],
             thresholds=null,
             minimum=0,
             w=12,
             h=8)::
    panel('timeseries',
          title,
          description,
          targets,
          unit,
          overrides=overrides,
          thresholds=thresholds,
          minimum=minimum,
          w=w,
          h=h,
          custom={
            drawStyle: 'line',
            lineWidth: 1,
            fillOpacity: if stack then 30 else 0,
            showPoints: 'never',
            spanNulls: false,
            stacking: { mode: if stack then 'normal' else 'none', group: 'A' },
          },
          options={
            legend: { displayMode: 'table', placement: 'bottom', showLegend: true, calcs: ['lastNotNull', 'max'] },
            tooltip: { mode: 'multi', sort: 'desc' },
          }),

  // Instant queries merged into one row per series; columns: [field, header] pairs, in order.
  //
  // Fields not named are dropped (Time, container ids...), so the table shows what matters
  // and nothing churns when a target label is added. hidden fields stay in the data,
  // undisplayed, for data links (${__data.fields.job}).
  table(title,
        description,
        targets,
        unit,
        columns,
        sortBy,
        descending=true,
        hidden=['job', 'instance'],
        overrides=[],
        thresholds=null,
        w=12,
        h=8)::
    local fields = [col[0] for col in columns];
    local headers = { [col[0]]: col[1] for col in columns };
    local undisplayed = [f for f in hidden if !std.member(fields, f)];
    local names = fields + undisplayed;
    panel('table',
          title,
          description,
          [t { instant: true, range: false, format: 'table' } for t in targets],
          unit,
          thresholds=thresholds,
          w=w,
          h=h,
          overrides=overrides + [override(f, { 'custom.hidden': true }) for f in undisplayed],
          transformations=[
            { id: 'merge', options: {} },
            { id: 'filterFieldsByName', options: { include: { names: names } } },
            {
              id: 'organize',
              options: {
                indexByName: { [names[i]]: i for i in std.range(0, std.length(names) - 1) },
                renameByName: headers,
              },
            },
          ],
          options={
            showHeader: true,
            cellHeight: 'sm',
            footer: { show: false, reducer: ['sum'], fields: '' },
            sortBy: [{ displayName: headers[sortBy], desc: descending }],
          }),

  // A table column drawn as a coloured bar gauge (share of a limit).
  gaugeCell(header, unit, thresholds):: {
    matcher: { id: 'byName', options: header },
    properties: [
      { id: 'unit', value: unit },
      { id: 'thresholds', value: thresholds },
      { id: 'color', value: { mode: 'thresholds' } },
      { id: 'custom.cellOptions', value: { type: 'gauge', mode: 'basic' } },
      { id: 'max', value: 1 },
      { id: 'min', value: 0 },
    ],
  },

  link(header, title, url):: override(header, { links: [{ title: title, url: url }] }),

  row(title):: { type: 'row', title: title, collapsed: false, panels: [], gridPos: { w: 24, h: 1 } },

  // Every panel's id and position: left to right, wrapping at 24 columns.
  layout(panels)::
    local place(state, p) =
      local wrap = p.type == 'row' || state.x + p.gridPos.w > 24;
      local x = if wrap then 0 else state.x;
      local y = if wrap then state.y + state.lineH else state.y;
      local lineH = if wrap then 0 else state.lineH;
      local placed = p { id: std.length(state.out) + 1, gridPos+: { x: x, y: y } };
      if p.type == 'row' then { x: 0, y: y + 1, lineH: 0, out: state.out + [placed] }
      else { x: x + p.gridPos.w, y: y, lineH: std.max(lineH, p.gridPos.h), out: state.out + [placed] };
    std.foldl(place, panels, { x: 0, y: 0, lineH: 0, out: [] }).out,

  // --- Variables -----------------------------------------------------------------------

  datasourceVariable():: {
    name: 'datasource',
    label: 'Data source',
    type: 'datasource',
    query: 'prometheus',
    current: {},
    hide: 0,
    includeAll: false,
    multi: false,
    options: [],
    refresh: 1,
    regex: '',
  },

  // A label_values() variable; with includeAll, "All" means the regex ".*".
  queryVariable(name, label, query, hide=0, multi=false, includeAll=false):: {
    name: name,
    label: label,
    type: 'query',
    datasource: ds,
    query: query,
    definition: query,
    current: if includeAll then { selected: true, text: ['All'], value: ['$__all'] } else {},
    hide: hide,
    multi: multi,
    includeAll: includeAll,
    options: [],
    refresh: 2,
    regex: '',
    sort: 1,
    [if includeAll then 'allValue']: '.*',
  },

  dashboard(config, uid, title, description, variables, panels):: {
    uid: uid,
    title: config.dashboardTitlePrefix + title,
    description: description,
    tags: config.dashboardTags,
    editable: true,
    graphTooltip: 1,
    time: { from: config.dashboardTimeFrom, to: 'now' },
    refresh: config.dashboardRefresh,
    timezone: config.dashboardTimezone,
    schemaVersion: 39,
    version: 1,
    annotations: { list: [] },
    links: [{
      title: 'vma-exporter',
      type: 'dashboards',
      tags: config.dashboardTags,
      asDropdown: true,
      includeVars: true,
      keepTime: true,
    }],
    templating: { list: variables },
    panels: $.layout(panels),
  },
}
