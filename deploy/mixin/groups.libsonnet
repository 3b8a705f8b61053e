// The rule groups: vmaRecordingRules (rules/) and vmaAlertingRules (alerts/) as
// prometheusAlerts and prometheusRules, in the layout oneRuleGroup chooses, and the
// runbook_url of every alert from runbookURLPattern.
local group(name, rules, interval) = {
  name: name,
  [if interval != null then 'interval']: interval,
  rules: rules,
};

{
  local c = $._config,

  // As kubernetes-mixin's add-runbook-links.libsonnet (which kube-prometheus applies to
  // its mixins) does: the pattern with %s replaced by the alert name in lower case, unless
  // the alert brings its own.
  local withRunbook(rule) = rule {
    [if !std.objectHas(rule.annotations, 'runbook_url') then 'annotations']+: {
      runbook_url: c.runbookURLPattern % std.asciiLower(rule.alert),
    },
  },
  local alerts = [withRunbook(r) for r in $.vmaAlertingRules],

  prometheusAlerts+:: {
    groups+: [
      group('vma-exporter', if c.oneRuleGroup then $.vmaRecordingRules + alerts else alerts, c.ruleGroupInterval),
    ],
  },
  prometheusRules+:: {
    groups+: if c.oneRuleGroup then [] else [
      group('vma-exporter.rules', $.vmaRecordingRules, c.ruleGroupInterval),
    ],
  },
}
