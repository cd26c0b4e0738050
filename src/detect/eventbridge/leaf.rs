//! One leaf of an event pattern: the array of values and comparison operators a field is tested
//! against, parsed with the checks PutRule applies, and matched against one event value.
//!
//! Semantics follow the EventBridge User Guide ("Comparison operators for use in event patterns",
//! "Matching null values and empty strings", "Arrays in event patterns") and, where the guide is
//! silent, the open-source engine EventBridge uses, `aws/event-ruler` (`JsonRuleCompiler`,
//! `ByteMachine`, `ComparableNumber`, `CIDR`).

use std::net::IpAddr;

use serde_json::{Map, Number, Value};

use crate::detect::{PatternError, StackText};

/// A field's array of values: it matches when any entry matches.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    /// Plain strings (not IP addresses), looked up at once: destructive-call rules list dozens
    /// of event names per service.
    pub(crate) strings: std::collections::HashSet<String>,
    pub(crate) matchers: Vec<Matcher>,
    /// `{"exists": true}` is in the array.
    pub(crate) exists: bool,
    /// `{"exists": false}` is in the array.
    pub(crate) absent: bool,
}

impl Leaf {
    pub(crate) fn wants_absence(&self) -> bool {
        self.absent
    }

    /// Whether `value` (the event's value at this field, `None` if missing) satisfies one of the
    /// value matchers or `{"exists": true}`. `{"exists": false}` is decided by the caller, which
    /// sees the whole event: event-ruler treats absence as "the path holds no value anywhere".
    pub(super) fn matches_present(&self, value: Option<&Value>) -> bool {
        let Some(value) = value else { return false };
        (self.exists && any_scalar(value, &mut |_| true))
            || (!self.strings.is_empty()
                && any_scalar(value, &mut |v| v.as_str().is_some_and(|s| self.strings.contains(s))))
            || self.matchers.iter().any(|m| any_scalar(value, &mut |v| m.matches(v)))
    }
}

/// Calls `test` on each scalar the event holds at this field: the value itself, or, for an array,
/// each element (nested arrays flattened). "If the value in the event is an array, then the event
/// pattern matches if the intersection of the event pattern array and the event array is
/// non-empty" (Arrays in event patterns). Objects hold no scalar at this path: "exists matching
/// only works on leaf nodes".
pub(super) fn any_scalar(value: &Value, test: &mut dyn FnMut(&Value) -> bool) -> bool {
    any_scalar_at_depth(value, test, 0)
}

fn any_scalar_at_depth(value: &Value, test: &mut dyn FnMut(&Value) -> bool, depth: usize) -> bool {
    match value {
        Value::Array(items) if depth < super::MAX_DEPTH => {
            items.iter().any(|v| any_scalar_at_depth(v, test, depth + 1))
        }
        Value::Array(_) | Value::Object(_) => false,
        scalar => test(scalar),
    }
}

/// One non-`exists` entry of a leaf array.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    /// A string: exact, character by character. A string that is an IP address also matches
    /// the same address written differently (event-ruler turns it into a one-address range).
    Exact {
        text: String,
        ip: Option<IpAddr>,
    },
    /// A number: numerically equal (`5` matches `5.0`), or the same JSON number.
    Number(PatternNumber),
    Bool(bool),
    Null,
    Prefix(String),
    /// Stored lower-cased.
    PrefixIgnoreCase(String),
    Suffix(String),
    /// Stored lower-cased.
    SuffixIgnoreCase(String),
    /// Stored lower-cased.
    EqualsIgnoreCase(String),
    Wildcard(Wildcard),
    Numeric(Range),
    Cidr(Cidr),
    AnythingBut(AnythingBut),
}

impl Matcher {
    fn matches(&self, value: &Value) -> bool {
        match (self, value) {
            (Matcher::Exact { text, ip }, Value::String(s)) => s == text || ip.is_some_and(|ip| s.parse() == Ok(ip)),
            (Matcher::Number(n), Value::Number(v)) => n.equals(v),
            (Matcher::Bool(b), Value::Bool(v)) => b == v,
            (Matcher::Null, Value::Null) => true,
            (Matcher::Prefix(p), Value::String(s)) => s.starts_with(p.as_str()),
            (Matcher::PrefixIgnoreCase(p), Value::String(s)) => starts_with_ignore_case(s, p),
            (Matcher::Suffix(p), Value::String(s)) => s.ends_with(p.as_str()),
            (Matcher::SuffixIgnoreCase(p), Value::String(s)) => ends_with_ignore_case(s, p),
            (Matcher::EqualsIgnoreCase(p), Value::String(s)) => lower(s).eq(p.chars()),
            (Matcher::Wildcard(w), Value::String(s)) => w.matches(s),
            (Matcher::Numeric(range), Value::Number(v)) => comparable(v).is_some_and(|v| range.contains(v)),
            (Matcher::Cidr(cidr), Value::String(s)) => s.parse().is_ok_and(|ip| cidr.contains(ip)),
            (Matcher::AnythingBut(but), value) => !but.excludes(value),
            _ => false,
        }
    }
}

/// A number written in a pattern. Exact matching tries both the numeric form and the literal
/// (event-ruler `JsonRuleCompiler.writeRules`): numbers outside the numeric range, such as
/// account IDs, still match themselves.
#[derive(Debug, Clone)]
pub(crate) struct PatternNumber {
    pub(crate) literal: Number,
    pub(crate) comparable: Option<i64>,
}

impl PatternNumber {
    fn equals(&self, value: &Number) -> bool {
        *value == self.literal || (self.comparable.is_some() && comparable(value) == self.comparable)
    }
}

/// What anything-but excludes. It only ever matches a value that is present: a missing field
/// has no value to compare (the engine matches values, and absence only through `exists`).
/// A value of another type is never excluded: `{"anything-but": "x"}` matches the number 5 and
/// `null` (event-ruler `ByteMachine`: a string set fails only on a string in the set, a number
/// set only on a number in it; prefix/suffix/wildcard forms only ever exclude strings).
#[derive(Debug, Clone)]
pub(crate) enum AnythingBut {
    Strings(Vec<String>),
    Numbers(Vec<i64>),
    Prefixes(Vec<String>),
    Suffixes(Vec<String>),
    /// Stored lower-cased.
    IgnoreCase(Vec<String>),
    Wildcards(Vec<Wildcard>),
}

impl AnythingBut {
    fn excludes(&self, value: &Value) -> bool {
        match (self, value) {
            (AnythingBut::Strings(set), Value::String(s)) => set.iter().any(|x| x == s),
            (AnythingBut::Numbers(set), Value::Number(n)) => comparable(n).is_some_and(|n| set.contains(&n)),
            (AnythingBut::Prefixes(set), Value::String(s)) => set.iter().any(|p| s.starts_with(p.as_str())),
            (AnythingBut::Suffixes(set), Value::String(s)) => set.iter().any(|p| s.ends_with(p.as_str())),
            (AnythingBut::IgnoreCase(set), Value::String(s)) => set.iter().any(|p| lower(s).eq(p.chars())),
            (AnythingBut::Wildcards(set), Value::String(s)) => set.iter().any(|w| w.matches(s)),
            _ => false,
        }
    }
}

/// A numeric range in millionths; a bound is `(value, inclusive)`.
#[derive(Debug, Clone)]
pub(crate) struct Range {
    pub(crate) lower: Option<(i64, bool)>,
    pub(crate) upper: Option<(i64, bool)>,
}

impl Range {
    fn contains(&self, v: i64) -> bool {
        let above = self.lower.is_none_or(|(b, inclusive)| if inclusive { v >= b } else { v > b });
        let below = self.upper.is_none_or(|(t, inclusive)| if inclusive { v <= t } else { v < t });
        above && below
    }
}

/// The largest magnitude numeric matching accepts, and its resolution: event-ruler
/// `ComparableNumber` ("Numbers are allowed in the range -5,000,000,000 to +5,000,000,000
/// (inclusive). Comparisons are precise to 6 decimal places").
pub(crate) const NUMERIC_LIMIT: i64 = 5_000_000_000;
pub(crate) const MILLIONTHS: i64 = 1_000_000;

/// A JSON number in millionths, if numeric matching can compare it: within +/-5e9 and with at
/// most six decimals. Other numbers never satisfy `numeric` (and a pattern may not contain them).
fn comparable(n: &Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return (i.unsigned_abs() <= NUMERIC_LIMIT.unsigned_abs()).then(|| i * MILLIONTHS);
    }
    let f = n.as_f64()?;
    if !f.is_finite() || f.abs() > NUMERIC_LIMIT as f64 {
        return None;
    }
    // The shortest decimal that round-trips, in positional notation ("0.000001", never "1e-6"),
    // read digit by digit so 0.1 is exactly 100000 millionths.
    let text = StackText::of(&f)?;
    millionths(text.as_str())
}

/// Parses `[-]digits[.digits]` into millionths; `None` past six decimals.
fn millionths(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if fraction.len() > 6 || whole.is_empty() {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let mut scaled = whole.checked_mul(MILLIONTHS)?;
    let mut unit = MILLIONTHS;
    for digit in fraction.bytes() {
        unit /= 10;
        scaled += i64::from(digit.checked_sub(b'0').filter(|d| *d <= 9)?) * unit;
    }
    Some(if negative { -scaled } else { scaled })
}

/// A `wildcard` value split at its unescaped `*`: `a*b*c` is `["a", "b", "c"]`, `*a` is
/// `["", "a"]`. One segment means no wildcard.
#[derive(Debug, Clone)]
pub(crate) struct Wildcard {
    pub(crate) segments: Vec<String>,
}

impl Wildcard {
    /// Escapes per event-ruler's README (Wildcard matching): `\*` is a literal star, `\\` a
    /// literal backslash, any other escape is an error, and `**` is not allowed.
    fn parse(text: &str) -> Result<Wildcard, String> {
        let mut segments = vec![String::new()];
        let mut chars = text.chars();
        let mut previous_was_star = false;
        while let Some(c) = chars.next() {
            let star = c == '*';
            if star && previous_was_star {
                return Err("consecutive wildcard characters (**) are not allowed".into());
            }
            previous_was_star = star;
            let current = segments.last_mut().ok_or("internal: no segment")?;
            match c {
                '*' => segments.push(String::new()),
                '\\' => match chars.next() {
                    Some(escaped @ ('*' | '\\')) => current.push(escaped),
                    _ => return Err("a backslash may only escape '*' or '\\'".into()),
                },
                other => current.push(other),
            }
        }
        Ok(Wildcard { segments })
    }

    /// `*` matches any run of characters, including none.
    fn matches(&self, s: &str) -> bool {
        let (first, rest) = match self.segments.split_first() {
            Some(split) => split,
            None => return false,
        };
        let Some((last, middle)) = rest.split_last() else { return s == first };
        if s.len() < first.len() + last.len() || !s.starts_with(first.as_str()) || !s.ends_with(last.as_str()) {
            return false;
        }
        // Leftmost placement of each middle segment leaves the most room for the next one.
        let mut window = &s[first.len()..s.len() - last.len()];
        for segment in middle {
            match window.find(segment.as_str()) {
                Some(at) => window = &window[at + segment.len()..],
                None => return false,
            }
        }
        true
    }
}

/// An address block for `cidr` (IPv4 or IPv6; an address only matches a block of its family).
#[derive(Debug, Clone)]
pub(crate) struct Cidr {
    pub(crate) network: IpAddr,
    pub(crate) prefix: u32,
}

impl Cidr {
    fn parse(text: &str) -> Result<Cidr, String> {
        let (address, prefix) = text.split_once('/').ok_or("expected ADDRESS/PREFIX-LENGTH, like 10.0.0.0/24")?;
        let network: IpAddr = address.parse().map_err(|_| format!("{address:?} is not an IPv4 or IPv6 address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix: u32 =
            prefix.parse().ok().filter(|p| *p <= max).ok_or(format!("prefix length must be 0 to {max}"))?;
        Ok(Cidr { network, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn lower(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().flat_map(char::to_lowercase)
}

fn to_lower(s: &str) -> String {
    lower(s).collect()
}

/// `lowered_prefix` is already lower-case.
fn starts_with_ignore_case(s: &str, lowered_prefix: &str) -> bool {
    let mut chars = lower(s);
    lowered_prefix.chars().all(|c| chars.next() == Some(c))
}

/// `lowered_suffix` is already lower-case.
fn ends_with_ignore_case(s: &str, lowered_suffix: &str) -> bool {
    let mut chars = s.chars().rev().flat_map(|c| c.to_lowercase().rev());
    lowered_suffix.chars().rev().all(|c| chars.next() == Some(c))
}

// ---------------------------------------------------------------------------------------------
// Parsing. `at` is the JSON path of the value being parsed, for error messages.
// ---------------------------------------------------------------------------------------------

/// The operators EventBridge documents (Comparison operators for use in event patterns).
const OPERATORS: &str = "prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, exists, cidr";

/// Parses a field's array. "Empty arrays are not allowed"; each entry is a string, number,
/// `true`, `false`, `null`, or a single-key operator object (event-ruler `JsonRuleCompiler`).
pub(super) fn parse_leaf(items: &[Value], at: &str) -> Result<Leaf, PatternError> {
    if items.is_empty() {
        return Err(PatternError::new(at, "empty arrays are not allowed; list at least one value to match"));
    }
    let mut leaf = Leaf { strings: Default::default(), matchers: Vec::new(), exists: false, absent: false };
    for (i, item) in items.iter().enumerate() {
        let at = format!("{at}[{i}]");
        match item {
            Value::String(s) => match ip_literal(s) {
                None => {
                    leaf.strings.insert(s.clone());
                }
                ip => leaf.matchers.push(Matcher::Exact { text: s.clone(), ip }),
            },
            Value::Number(n) => {
                leaf.matchers.push(Matcher::Number(PatternNumber { literal: n.clone(), comparable: comparable(n) }))
            }
            Value::Bool(b) => leaf.matchers.push(Matcher::Bool(*b)),
            Value::Null => leaf.matchers.push(Matcher::Null),
            Value::Object(expression) => match parse_expression(expression, &at)? {
                Entry::Matcher(m) => leaf.matchers.push(m),
                Entry::Exists(true) => leaf.exists = true,
                Entry::Exists(false) => leaf.absent = true,
            },
            Value::Array(_) => {
                return Err(PatternError::new(
                    at,
                    "a match value must be a string, number, true, false, null or an operator object, not an array",
                ));
            }
        }
    }
    Ok(leaf)
}

/// A string pattern event-ruler compares as an address: dotted-quad IPv4 or colon-hex IPv6
/// (`CIDR.ipToRangeIfPossible`).
fn ip_literal(s: &str) -> Option<IpAddr> {
    let ipv6 = s.contains(':') && s.chars().all(|c| c.is_ascii_hexdigit() || c == ':');
    let ipv4 = s.split('.').count() == 4 && s.chars().all(|c| c.is_ascii_digit() || c == '.');
    let looks_like_ip = ipv4 || ipv6;
    if looks_like_ip { s.parse().ok() } else { None }
}

enum Entry {
    Matcher(Matcher),
    Exists(bool),
}

fn parse_expression(expression: &Map<String, Value>, at: &str) -> Result<Entry, PatternError> {
    let mut keys = expression.iter();
    let (Some((operator, value)), None) = (keys.next(), keys.next()) else {
        return Err(PatternError::new(
            at,
            format!("an operator object must have exactly one key, found {}", expression.len()),
        ));
    };
    let at = format!("{at}.{operator}");
    let matcher = match operator.as_str() {
        "prefix" => affix(value, &at, Matcher::Prefix, Matcher::PrefixIgnoreCase)?,
        "suffix" => affix(value, &at, Matcher::Suffix, Matcher::SuffixIgnoreCase)?,
        "equals-ignore-case" => Matcher::EqualsIgnoreCase(to_lower(string(value, &at)?)),
        "wildcard" => Matcher::Wildcard(wildcard(value, &at)?),
        "anything-but" => Matcher::AnythingBut(anything_but(value, &at)?),
        "numeric" => Matcher::Numeric(numeric(value, &at)?),
        "cidr" => Matcher::Cidr(Cidr::parse(string(value, &at)?).map_err(|e| PatternError::new(&at, e))?),
        "exists" => match value {
            Value::Bool(b) => return Ok(Entry::Exists(*b)),
            _ => return Err(PatternError::new(at, "exists takes true or false")),
        },
        other => return Err(PatternError::new(at, format!("unknown operator {other:?}; expected one of {OPERATORS}"))),
    };
    Ok(Entry::Matcher(matcher))
}

fn string<'a>(value: &'a Value, at: &str) -> Result<&'a str, PatternError> {
    value.as_str().ok_or_else(|| PatternError::new(at, "expected a string"))
}

fn wildcard(value: &Value, at: &str) -> Result<Wildcard, PatternError> {
    Wildcard::parse(string(value, at)?).map_err(|e| PatternError::new(at, e))
}

/// `prefix`/`suffix` take a string, or `{"equals-ignore-case": string}`.
fn affix(
    value: &Value,
    at: &str,
    plain: fn(String) -> Matcher,
    ignore_case: fn(String) -> Matcher,
) -> Result<Matcher, PatternError> {
    match value {
        Value::String(s) => Ok(plain(s.clone())),
        Value::Object(inner) => match single(inner) {
            Some(("equals-ignore-case", v)) => {
                Ok(ignore_case(to_lower(string(v, &format!("{at}.equals-ignore-case"))?)))
            }
            _ => Err(PatternError::new(at, "expected a string or {\"equals-ignore-case\": string}")),
        },
        _ => Err(PatternError::new(at, "expected a string or {\"equals-ignore-case\": string}")),
    }
}

fn single(map: &Map<String, Value>) -> Option<(&str, &Value)> {
    let mut entries = map.iter();
    match (entries.next(), entries.next()) {
        (Some((k, v)), None) => Some((k.as_str(), v)),
        _ => None,
    }
}

/// `anything-but` takes a string, a number, a non-empty list of only strings or only numbers, or
/// `{"prefix"|"suffix"|"equals-ignore-case"|"wildcard": string or list of strings}`.
fn anything_but(value: &Value, at: &str) -> Result<AnythingBut, PatternError> {
    match value {
        Value::String(s) => Ok(AnythingBut::Strings(vec![s.clone()])),
        Value::Number(n) => Ok(AnythingBut::Numbers(vec![pattern_number(n, at)?])),
        Value::Array(items) => anything_but_list(items, at),
        Value::Object(inner) => {
            let Some((kind, v)) = single(inner) else {
                return Err(PatternError::new(at, "expected one of prefix, suffix, equals-ignore-case, wildcard"));
            };
            let at = format!("{at}.{kind}");
            let strings = strings(v, &at)?;
            match kind {
                "prefix" | "suffix" if strings.iter().any(String::is_empty) => {
                    Err(PatternError::new(at, "an empty prefix or suffix is not allowed"))
                }
                "prefix" => Ok(AnythingBut::Prefixes(strings)),
                "suffix" => Ok(AnythingBut::Suffixes(strings)),
                "equals-ignore-case" => Ok(AnythingBut::IgnoreCase(strings.iter().map(|s| to_lower(s)).collect())),
                "wildcard" => {
                    let parsed = strings.iter().map(|s| Wildcard::parse(s).map_err(|e| PatternError::new(&at, e)));
                    Ok(AnythingBut::Wildcards(parsed.collect::<Result<_, _>>()?))
                }
                other => Err(PatternError::new(
                    at,
                    format!(
                        "anything-but does not take {other:?}; expected prefix, suffix, equals-ignore-case or wildcard"
                    ),
                )),
            }
        }
        _ => Err(PatternError::new(at, "expected a string, a number, a list, or an operator object")),
    }
}

fn anything_but_list(items: &[Value], at: &str) -> Result<AnythingBut, PatternError> {
    if items.iter().all(Value::is_string) && !items.is_empty() {
        return Ok(AnythingBut::Strings(items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()));
    }
    if items.iter().all(Value::is_number) && !items.is_empty() {
        let numbers = items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_number().map(|n| pattern_number(n, &format!("{at}[{i}]"))));
        return Ok(AnythingBut::Numbers(numbers.collect::<Result<_, _>>()?));
    }
    Err(PatternError::new(at, "the list must be non-empty and hold only strings or only numbers"))
}

/// A string or a non-empty list of strings.
fn strings(value: &Value, at: &str) -> Result<Vec<String>, PatternError> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_string) => {
            Ok(items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        }
        _ => Err(PatternError::new(at, "expected a string or a non-empty list of strings")),
    }
}

/// A number used by `numeric` or `anything-but`: PutRule rejects what numeric matching cannot
/// represent.
fn pattern_number(n: &Number, at: &str) -> Result<i64, PatternError> {
    comparable(n)
        .ok_or_else(|| PatternError::new(at, format!("{n} is outside -5e9..5e9 or has more than 6 decimal places")))
}

/// `["op", n]` with op one of `=`, `<`, `<=`, `>`, `>=`, or a range `[">"|">=", a, "<"|"<=", b]`
/// with a < b (event-ruler `processNumericMatchExpression`, `Range.ensureValidRange`).
fn numeric(value: &Value, at: &str) -> Result<Range, PatternError> {
    let items =
        value.as_array().ok_or_else(|| PatternError::new(at, "expected an array like [\">\", 0, \"<=\", 5]"))?;
    let term = |i: usize| -> Result<(&str, i64), PatternError> {
        let op = items
            .get(i)
            .and_then(Value::as_str)
            .ok_or_else(|| PatternError::new(format!("{at}[{i}]"), "expected an operator: =, <, <=, >, >="))?;
        let n = items.get(i + 1).and_then(Value::as_number).ok_or_else(|| {
            PatternError::new(format!("{at}[{}]", i + 1), format!("{op} must be followed by a number"))
        })?;
        Ok((op, pattern_number(n, &format!("{at}[{}]", i + 1))?))
    };
    let (op, first) = term(0)?;
    let range = match op {
        "=" => Range { lower: Some((first, true)), upper: Some((first, true)) },
        "<" => Range { lower: None, upper: Some((first, false)) },
        "<=" => Range { lower: None, upper: Some((first, true)) },
        ">" | ">=" if items.len() > 2 => {
            let (top_op, top) = term(2)?;
            let inclusive = match top_op {
                "<" => false,
                "<=" => true,
                other => {
                    return Err(PatternError::new(
                        format!("{at}[2]"),
                        format!("a range's upper bound takes < or <=, not {other:?}"),
                    ));
                }
            };
            if first >= top {
                return Err(PatternError::new(at, "the lower bound must be less than the upper bound"));
            }
            Range { lower: Some((first, op == ">=")), upper: Some((top, inclusive)) }
        }
        ">" | ">=" => Range { lower: Some((first, op == ">=")), upper: None },
        other => {
            return Err(PatternError::new(
                format!("{at}[0]"),
                format!("unknown numeric operator {other:?}; expected =, <, <=, >, >="),
            ));
        }
    };
    let expected_len = if range.lower.is_some() && range.upper.is_some() && op != "=" { 4 } else { 2 };
    if items.len() != expected_len {
        return Err(PatternError::new(
            at,
            format!("too many elements in numeric expression (expected {expected_len})"),
        ));
    }
    Ok(range)
}
