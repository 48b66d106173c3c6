// A small YAML writer for Prometheus rule files that keeps comments: std.manifestYamlDoc
// would drop them, and the why of each rule is worth reading where operators look. A
// rule may carry a hidden `comment::` (lines of text); it is written as `# …` lines above
// the rule. Strings are written plain when that is unambiguous, as literal blocks (`|`)
// when they span lines, descriptions as folded blocks (`>-`) wrapped at `width`, and
// JSON-quoted otherwise. tests/mixin.rs parses every written file back and compares it
// with the data, so a writing mistake fails there.
local width = 88;

local spaces(n) = std.join('', std.makeArray(n, function(_) ' '));

local reserved = ['true', 'false', 'yes', 'no', 'on', 'off', 'null', 'y', 'n', '~'];

// Whether `sub` occurs in `s` (std.findSubstr is slow on long strings in jsonnet 0.18).
local has(s, sub) = std.length(std.strReplace(s, sub, '')) != std.length(s);

local plainSafe(s) =
  std.length(s) > 0
  && !has(s, '\n')
  && !has(s, ': ')
  && !has(s, ' #')
  && !has(s, '\t')
  && !has(s, '"')
  && !has(s, "'")
  && !has('-?:,[]{}#&*!|>%@` ', s[0])
  && s[std.length(s) - 1] != ' '
  && s[std.length(s) - 1] != ':'
  && !std.member(reserved, std.asciiLower(s))
  // Numbers and number-like words would be read back as numbers.
  && std.length(std.filter(function(c) has('0123456789.+-eE_x', c), std.stringChars(s))) != std.length(s);

local scalar(s) =
  if std.isString(s) then (if plainSafe(s) then s else std.escapeStringJson(s))
  else std.toString(s);

local lines(s) = std.split(std.rstripChars(s, '\n'), '\n');

// A literal block: the text as it is, one trailing newline.
local literal(s, indent) =
  '|\n' + std.join('', [(if l == '' then '' else spaces(indent) + l) + '\n' for l in lines(s)]);

// Words joined into lines of at most `w` characters (a longer word stands alone).
local wrap(text, w) =
  local step(acc, word) =
    local done = acc[0], cur = acc[1];
    if cur == '' then [done, word]
    else if std.length(cur) + 1 + std.length(word) <= w then [done, cur + ' ' + word]
    else [done + [cur], word];
  local r = std.foldl(step, std.split(text, ' '), [[], '']);
  r[0] + [r[1]];

// A folded block (`>-`): one paragraph, read back with single spaces between the words.
local folded(s, indent) =
  assert !has(s, '\n') : 'folded text has a newline: ' + s;
  assert !has(s, '  ') : 'folded text has a double space: ' + s;
  assert s == std.stripChars(s, ' ') : 'folded text has outer spaces: ' + s;
  '>-\n' + std.join('', [spaces(indent) + l + '\n' for l in wrap(s, width - indent)]);

local comment(c, indent) =
  if c == null then ''
  else std.join('', [spaces(indent) + (if l == '' then '#' else '# ' + l) + '\n' for l in lines(c)]);

local value(key, v, indent) =
  if std.isString(v) && has(std.rstripChars(v, '\n'), '\n') then
    literal(v, indent)
  else if std.isString(v) && key == 'description' && std.length(v) > width - indent then
    folded(v, indent)
  else scalar(v) + '\n';

// Annotations in the order people read them, other keys sorted.
local keyOrder = ['summary', 'description', 'runbook_url'];
local orderedKeys(m) =
  [k for k in keyOrder if std.objectHas(m, k)]
  + [k for k in std.objectFields(m) if !std.member(keyOrder, k)];

local map(m, indent) =
  std.join('', [
    spaces(indent) + k + ': ' + value(k, m[k], indent + 2)
    for k in orderedKeys(m)
  ]);

local ruleKeys = ['alert', 'record', 'expr', 'for', 'labels', 'annotations'];

local rule(r, indent) =
  local fields = [k for k in ruleKeys if std.objectHas(r, k)];
  local extra = [k for k in std.objectFields(r) if !std.member(ruleKeys, k)];
  assert extra == [] : 'unknown rule fields ' + std.toString(extra);
  comment(std.get(r, 'comment', null, inc_hidden=true), indent)
  + std.join('', [
    (if i == 0 then spaces(indent) + '- ' else spaces(indent + 2))
    + fields[i] + ':'
    + (if std.isObject(r[fields[i]]) then '\n' + map(r[fields[i]], indent + 4)
       else ' ' + value(fields[i], r[fields[i]], indent + 4))
    for i in std.range(0, std.length(fields) - 1)
  ]);

{
  // The list items of `groups` ([{name, rules}]) at `indent`, rules separated by a blank
  // line, groups too.
  groups(groups, indent)::
    std.join('\n', [
      spaces(indent) + '- name: ' + scalar(g.name) + '\n'
      + spaces(indent + 2) + 'rules:\n'
      + std.join('\n', [rule(r, indent + 4) for r in g.rules])
      for g in groups
    ]),

  // A rule file: `header` (comment text), then `groups`.
  ruleFile(header, groups):: comment(header, 0) + 'groups:\n' + self.groups(groups, 2),

  comment:: comment,
  scalar:: scalar,
}
