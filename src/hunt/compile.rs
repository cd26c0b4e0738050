//! Detections to SQL predicates over one row of the CloudTrail table.
//!
//! An EventBridge pattern is matched on the event EventBridge builds from a record
//! ([`crate::detect::eventbridge::envelope`]): `detail` is the record and `source`,
//! `detail-type`, `account`, `region`, `time` and `id` derive from it, so each becomes a SQL
//! expression over the record's columns. A filter pattern is matched on the record itself.
//!
//! Columns are read with the types CloudTrail documents for them (the record contents
//! reference): a string field holds a string or is absent, `readOnly` holds a boolean, and
//! `requestParameters`, `responseElements`, `additionalEventData`, `serviceEventDetails` and
//! `edgeDeviceDetails` hold an object, `null`, or nothing. Inside those JSON columns every
//! value is typed at run time with `json_format`, so a string, a number, a boolean and `null`
//! are told apart as the evaluators tell them apart, and arrays are searched element by element
//! (two levels of nesting) as EventBridge searches them.
//!
//! Where the table cannot say what the evaluator would see, compiling fails with a
//! [`Unsupported`] naming the construct, rather than writing a query that means something else:
//! a field the table has no column for, `null` or `exists` on a JSON column itself (the table
//! stores `null` and a missing object alike), an IPv6 address literal or CIDR block, a map
//! field, a JSON key that needs quoting.

use crate::detect::eventbridge::leaf::{AnythingBut, Leaf, Matcher, NUMERIC_LIMIT, Range};
use crate::detect::eventbridge::{DEFAULT_DETAIL_TYPE, DETAIL_TYPES, EventPattern, Field, Node, SOURCE_EXCEPTIONS};
use crate::detect::logfilter::{Comparison, Condition, Expr, FilterPattern, Literal, Shape as Text, Step, Test};
use crate::hunt::sql::{Literals, Pred, any_match, double, elements, path_key, quote};
use crate::hunt::table::{self, COLUMNS, Column, Shape};

/// A construct the SQL cannot express exactly, with where it is and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// Where in the pattern: a JSON path (`detail.requestParameters`) or a selector.
    pub at: String,
    pub why: String,
}

type Result<T> = std::result::Result<T, Unsupported>;

fn unsupported<T>(at: &str, why: impl Into<String>) -> Result<T> {
    Err(Unsupported { at: at.to_string(), why: why.into() })
}

/// What a pattern path points to in a row.
#[derive(Debug, Clone)]
enum Val {
    /// Nothing: the event has no value here.
    Missing,
    /// A scalar with a known type.
    Scalar(Scalar),
    /// A JSON value (SQL type JSON); SQL NULL when absent.
    Json(String),
    /// A JSON-text column that holds an object, or NULL for both `null` and absent.
    JsonColumn(String),
    Struct(&'static [Column], String),
    Array(&'static [Column], String),
    Map,
    /// The CloudTrail record (`detail` of the envelope).
    Record,
    /// The EventBridge event built around the record.
    Envelope,
}

/// A scalar as SQL sees it: each expression is non-NULL exactly when the value has that type.
#[derive(Debug, Clone, Default)]
struct Scalar {
    /// The value when it is a string.
    text: Option<String>,
    /// The value when it is a number, as DOUBLE.
    number: Option<String>,
    /// The number as its JSON text, when it is a number.
    number_text: Option<String>,
    /// `'true'` or `'false'` when it is a boolean.
    boolean: Option<String>,
    is_null: Option<Pred>,
    /// There is a scalar here (any type, `null` included).
    present: Option<Pred>,
}

impl Scalar {
    fn is_null(&self) -> Pred {
        self.is_null.clone().unwrap_or(Pred::False)
    }

    fn present(&self) -> Pred {
        self.present.clone().unwrap_or(Pred::False)
    }

    /// A string column: NULL when absent.
    fn text(column: &str) -> Scalar {
        Scalar {
            text: Some(column.into()),
            present: Some(Pred::exact(format!("({column} IS NOT NULL)"))),
            ..Scalar::default()
        }
    }

    /// An envelope field: always there, `null` when the record lacks its source field.
    fn text_or_null(expr: &str) -> Scalar {
        Scalar {
            text: Some(expr.into()),
            is_null: Some(Pred::exact(format!("({expr} IS NULL)"))),
            present: Some(Pred::True),
            ..Scalar::default()
        }
    }

    fn boolean(column: &str) -> Scalar {
        Scalar {
            boolean: Some(column.into()),
            present: Some(Pred::exact(format!("({column} IS NOT NULL)"))),
            ..Scalar::default()
        }
    }

    /// A JSON value typed at run time; arrays and objects are none of the scalar types.
    fn json(value: &str) -> Scalar {
        let format = format!("json_format({value})");
        Scalar {
            text: Some(format!("(CASE WHEN {format} LIKE '\"%' THEN json_extract_scalar({value}, '$') END)")),
            number: Some(format!("TRY_CAST({format} AS DOUBLE)")),
            number_text: Some(format!("(CASE WHEN TRY_CAST({format} AS DOUBLE) IS NOT NULL THEN {format} END)")),
            boolean: Some(format!("(CASE WHEN {format} IN ('true', 'false') THEN {format} END)")),
            is_null: Some(Pred::guard(format!("{format} = 'null'"))),
            present: Some(Pred::guard(format!("NOT ({format} LIKE '[%' OR {format} LIKE '{{%')"))),
        }
    }
}

/// The derived envelope fields, computed once per row by the query (see [`derived_columns`]).
pub const SOURCE_COLUMN: &str = "ctguard_source";
pub const DETAIL_TYPE_COLUMN: &str = "ctguard_detail_type";
pub const ACCOUNT_COLUMN: &str = "ctguard_account";
pub const PARTITION_COLUMN: &str = "ctguard_partition";

/// `expression AS name` for each column the compiled predicates read besides the table's own.
pub fn derived_columns(account_placeholder: &str) -> Vec<String> {
    vec![
        format!("{} AS {SOURCE_COLUMN}", source_expr()),
        format!("{} AS {DETAIL_TYPE_COLUMN}", detail_type_expr()),
        format!("{} AS {ACCOUNT_COLUMN}", crate::hunt::sql::account_expr(account_placeholder)),
        format!("{} AS {PARTITION_COLUMN}", crate::hunt::sql::PARTITION_EXPR),
    ]
}

/// The record's derived `source`: `aws.` and the eventSource host's first label.
fn source_expr() -> String {
    let mut cases = String::from("(CASE WHEN eventsource IS NULL THEN NULL");
    for (from, to) in SOURCE_EXCEPTIONS {
        cases.push_str(&format!(" WHEN eventsource = {} THEN {}", quote(from), quote(to)));
    }
    cases.push_str(
        " WHEN eventsource LIKE '%.amazonaws.com' THEN 'aws.' || substr(eventsource, 1, length(eventsource) - 14) \
         ELSE 'aws.' || split_part(eventsource, '.', 1) END)",
    );
    cases
}

/// The record's derived `detail-type`.
fn detail_type_expr() -> String {
    let mut cases = String::from("(CASE eventtype");
    for (event_type, detail_type) in DETAIL_TYPES {
        cases.push_str(&format!(" WHEN {} THEN {}", quote(event_type), quote(detail_type)));
    }
    cases.push_str(&format!(" ELSE {} END)", quote(DEFAULT_DETAIL_TYPE)));
    cases
}

/// A shared predicate's column: `ctguard_shared_<n>`, numbered from 1.
pub fn shared_column(index: usize) -> String {
    format!("ctguard_shared_{}", index + 1)
}

/// Row-level field predicates that several detections repeat word for word (the agent
/// exclusion every generic rule carries, an agent rule's signals under each event source):
/// the query computes each once per row as a boolean column, and the detections name it.
#[derive(Debug, Clone, Default)]
pub struct Shared {
    /// The predicates' SQL, by column index.
    pub texts: Vec<String>,
    index: std::collections::HashMap<String, usize>,
}

impl Shared {
    /// Shorter predicates are cheaper written out than named.
    const MIN_BYTES: usize = 128;

    /// Chooses, from every row-level field predicate a first compilation saw, those repeated
    /// and long enough to be worth a column. Only the outermost are kept, so a shared column
    /// never reads another and one level of subquery computes them all.
    pub fn choose(seen: &[String]) -> Shared {
        let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for text in seen {
            *counts.entry(text.as_str()).or_default() += 1;
        }
        let mut candidates: Vec<&str> =
            counts.into_iter().filter(|(t, n)| *n > 1 && t.len() >= Self::MIN_BYTES).map(|(t, _)| t).collect();
        // Longest first, then by text, so the numbering does not depend on hashing.
        candidates.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        let mut shared = Shared::default();
        for text in candidates {
            if !shared.texts.iter().any(|kept| kept.contains(text)) {
                shared.index.insert(text.to_string(), shared.texts.len());
                shared.texts.push(text.to_string());
            }
        }
        shared
    }
}

/// Compiles one detection's pattern. Lambda variables are numbered across the whole query.
pub struct Compiler<'a> {
    literals: &'a Literals,
    vars: usize,
    /// How many lambda bodies enclose what is being compiled: a predicate inside one reads
    /// the lambda's variable, so it cannot be computed once per row.
    lambda_depth: usize,
    shared: Option<&'a Shared>,
    /// Row-level field predicates compiled so far (when nothing is shared yet).
    seen: Vec<String>,
    /// Shared columns the last detection read.
    used: std::collections::BTreeSet<usize>,
}

impl<'a> Compiler<'a> {
    pub fn new(literals: &'a Literals) -> Self {
        Compiler {
            literals,
            vars: 0,
            lambda_depth: 0,
            shared: None,
            seen: Vec::new(),
            used: std::collections::BTreeSet::new(),
        }
    }

    /// A compiler that names the `shared` predicates instead of writing them out.
    pub fn with_shared(literals: &'a Literals, shared: &'a Shared) -> Self {
        Compiler { shared: Some(shared), ..Compiler::new(literals) }
    }

    /// Every row-level field predicate compiled, in order, repeats included.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// The shared columns read since the last call, by index.
    pub fn take_used(&mut self) -> std::collections::BTreeSet<usize> {
        std::mem::take(&mut self.used)
    }

    /// A field's predicate, or the shared column that holds it.
    fn share(&mut self, pred: Pred) -> Pred {
        let Pred::Sql(text) = &pred else { return pred };
        if self.lambda_depth > 0 {
            return pred;
        }
        match self.shared {
            None => {
                // A field whose only content is one child field has that field's very text:
                // one occurrence, not a repeat.
                if self.seen.last() != Some(text) {
                    self.seen.push(text.clone());
                }
                pred
            }
            Some(shared) => match shared.index.get(text) {
                Some(&i) => {
                    self.used.insert(i);
                    Pred::exact(shared_column(i))
                }
                None => pred,
            },
        }
    }

    /// Compiles a lambda body.
    fn in_lambda<T>(&mut self, body: impl FnOnce(&mut Self) -> T) -> T {
        self.lambda_depth += 1;
        let out = body(self);
        self.lambda_depth -= 1;
        out
    }

    fn var(&mut self) -> String {
        self.vars += 1;
        format!("x{}", self.vars)
    }

    // -----------------------------------------------------------------------------------------
    // Walking the schema
    // -----------------------------------------------------------------------------------------

    /// The value under `key` of `at`; `path` names it in errors.
    fn child(&self, at: &Val, key: &str, path: &str) -> Result<Val> {
        let column = |cols: &'static [Column], prefix: Option<&str>| -> Result<Val> {
            let Some(c) = table::find(cols, key) else {
                return unsupported(path, "the CloudTrail table has no column for this field");
            };
            let expr = match prefix {
                Some(p) => format!("{p}.{}", c.name),
                None => c.name.to_string(),
            };
            Ok(match c.shape {
                Shape::Text => Val::Scalar(Scalar::text(&expr)),
                Shape::Bool => Val::Scalar(Scalar::boolean(&expr)),
                Shape::Json => Val::JsonColumn(expr),
                Shape::Struct(inner) => Val::Struct(inner, expr),
                Shape::Array(inner) => Val::Array(inner, expr),
                Shape::Map => Val::Map,
            })
        };
        let json_key = || {
            path_key(key).ok_or_else(|| Unsupported {
                at: path.to_string(),
                why: "a JSON key other than letters, digits and _ is written differently by Athena and other engines"
                    .into(),
            })
        };
        match at {
            Val::Envelope => Ok(match key {
                "version" => Val::Scalar(Scalar::text_or_null("'0'")),
                "id" => Val::Scalar(Scalar::text_or_null("eventid")),
                "detail-type" => Val::Scalar(Scalar::text_or_null(DETAIL_TYPE_COLUMN)),
                "source" => Val::Scalar(Scalar::text_or_null(SOURCE_COLUMN)),
                "account" => Val::Scalar(Scalar::text_or_null("recipientaccountid")),
                "time" => Val::Scalar(Scalar::text_or_null("eventtime")),
                "region" => Val::Scalar(Scalar::text_or_null("awsregion")),
                "detail" => Val::Record,
                // `resources` is an empty array for CloudTrail events: nothing to match.
                _ => Val::Missing,
            }),
            Val::Record => column(COLUMNS, None),
            Val::Struct(cols, expr) => column(cols, Some(expr)),
            Val::Json(value) | Val::JsonColumn(value) => {
                Ok(Val::Json(format!("json_extract({value}, {})", json_key()?)))
            }
            Val::Map => unsupported(path, "map fields are read differently by Athena and other engines"),
            Val::Missing | Val::Scalar(_) | Val::Array(..) => Ok(Val::Missing),
        }
    }

    // -----------------------------------------------------------------------------------------
    // EventBridge
    // -----------------------------------------------------------------------------------------

    /// The predicate for an event pattern: any of its `$or`-free alternatives.
    pub fn event_pattern(&mut self, pattern: &EventPattern) -> Result<Pred> {
        let mut alternatives = Vec::new();
        for node in &pattern.alternatives {
            alternatives.push(self.node(node, &Val::Envelope, "")?);
        }
        Ok(Pred::or(alternatives))
    }

    /// A pattern object level at `at`: every field must hold. When `at` is an array, one element
    /// must satisfy every field (event-ruler's array consistency); an empty array counts as no
    /// value.
    fn node(&mut self, node: &Node, at: &Val, path: &str) -> Result<Pred> {
        match at {
            Val::Json(value) => {
                let when_empty = self.fields(node, &Val::Missing, path)?;
                let (outer, inner) = (self.var(), self.var());
                let fields = self.in_lambda(|this| this.fields(node, &Val::Json(inner.clone()), path))?;
                let deeper = any_match(&elements(&outer), &inner, fields);
                let empty = |v: &str| Pred::and([Pred::guard(format!("json_format({v}) = '[]'")), when_empty.clone()]);
                let element = Pred::or([empty(&outer), deeper]);
                Ok(Pred::or([any_match(&elements(value), &outer, element), empty(value)]))
            }
            Val::Array(cols, expr) => {
                let when_empty = self.fields(node, &Val::Missing, path)?;
                let item = self.var();
                let fields = self.in_lambda(|this| this.fields(node, &Val::Struct(cols, item.clone()), path))?;
                let none = Pred::and([Pred::exact(format!("(COALESCE(cardinality({expr}), 0) = 0)")), when_empty]);
                Ok(Pred::or([any_match(expr, &item, fields), none]))
            }
            other => self.fields(node, other, path),
        }
    }

    fn fields(&mut self, node: &Node, at: &Val, path: &str) -> Result<Pred> {
        let mut all = Vec::new();
        for field in &node.fields {
            let field_path = if path.is_empty() { field.key.clone() } else { format!("{path}.{}", field.key) };
            let value = self.child(at, &field.key, &field_path)?;
            all.push(self.field(field, &value, &field_path)?);
        }
        Ok(Pred::and(all))
    }

    fn field(&mut self, field: &Field, value: &Val, path: &str) -> Result<Pred> {
        let leaf = match &field.leaf {
            None => Pred::True,
            Some(leaf) => {
                let present = self.leaf(leaf, value, path)?;
                let absent = if leaf.wants_absence() {
                    self.has_scalar(&Val::Envelope, &field.path, "")?.not()
                } else {
                    Pred::False
                };
                Pred::or([present, absent])
            }
        };
        if leaf == Pred::False {
            return Ok(Pred::False);
        }
        let child = match &field.child {
            None => Pred::True,
            Some(node) => self.node(node, value, path)?,
        };
        Ok(self.share(Pred::and([leaf, child])))
    }

    /// Whether any scalar sits at `path` below `at`, through arrays (`{"exists": false}` asks
    /// this of the whole event).
    fn has_scalar(&mut self, at: &Val, path: &[String], shown: &str) -> Result<Pred> {
        let Some((key, rest)) = path.split_first() else {
            return self.any_scalar(at, shown, &mut |_, s| Ok(s.present()), true);
        };
        let shown = if shown.is_empty() { key.clone() } else { format!("{shown}.{key}") };
        match at {
            Val::Json(value) => {
                let (outer, inner) = (self.var(), self.var());
                let below = self.child(&Val::Json(inner.clone()), key, &shown)?;
                let found = self.has_scalar(&below, rest, &shown)?;
                let deeper = any_match(&elements(&outer), &inner, found);
                Ok(any_match(&elements(value), &outer, deeper))
            }
            Val::Array(cols, expr) => {
                let item = self.var();
                let below = self.child(&Val::Struct(cols, item.clone()), key, &shown)?;
                let found = self.has_scalar(&below, rest, &shown)?;
                Ok(any_match(expr, &item, found))
            }
            other => {
                let below = self.child(other, key, &shown)?;
                self.has_scalar(&below, rest, &shown)
            }
        }
    }

    /// Whether `test` holds for any scalar `at` holds: the value itself or, for an array, any
    /// element. `asks_null` says whether `test` can hold on `null`, which a JSON column itself
    /// cannot tell from absence.
    fn any_scalar(
        &mut self,
        at: &Val,
        path: &str,
        test: &mut dyn FnMut(&Self, &Scalar) -> Result<Pred>,
        asks_null: bool,
    ) -> Result<Pred> {
        match at {
            Val::Scalar(scalar) => test(self, scalar),
            Val::Json(value) => {
                let (outer, inner) = (self.var(), self.var());
                let holds = test(self, &Scalar::json(&inner))?;
                let deeper = any_match(&elements(&outer), &inner, holds);
                Ok(any_match(&elements(value), &outer, deeper))
            }
            Val::JsonColumn(_) if asks_null => unsupported(
                path,
                "the table stores a null object and a missing one alike, so null, exists and anything-but cannot be told apart here",
            ),
            Val::Map => unsupported(path, "map fields are read differently by Athena and other engines"),
            // Objects and arrays of objects hold no scalar.
            _ => Ok(Pred::False),
        }
    }

    fn leaf(&mut self, leaf: &Leaf, at: &Val, path: &str) -> Result<Pred> {
        let asks_null = leaf.exists
            || leaf.wants_absence()
            || leaf.matchers.iter().any(|m| matches!(m, Matcher::Null | Matcher::AnythingBut(_)));
        self.any_scalar(at, path, &mut |this, scalar| this.leaf_on(leaf, scalar, path), asks_null)
    }

    fn leaf_on(&self, leaf: &Leaf, s: &Scalar, path: &str) -> Result<Pred> {
        let mut any = Vec::new();
        if leaf.exists {
            any.push(s.present());
        }
        if let Some(text) = &s.text {
            any.push(self.literals.one_of(text, &leaf.strings, false));
        }
        for matcher in &leaf.matchers {
            any.push(self.matcher(matcher, s, path)?);
        }
        Ok(Pred::or(any))
    }

    fn matcher(&self, m: &Matcher, s: &Scalar, path: &str) -> Result<Pred> {
        let l = self.literals;
        let text = |f: &dyn Fn(&str) -> Pred| s.text.as_deref().map_or(Pred::False, f);
        Ok(match m {
            Matcher::Exact { text: t, ip } => {
                if matches!(ip, Some(std::net::IpAddr::V6(_))) {
                    return unsupported(path, format!("the IPv6 address {t:?} also matches its other spellings"));
                }
                text(&|e| l.one_of(e, [t], false))
            }
            Matcher::Number(n) => match (&s.number, n.literal.as_f64()) {
                (Some(e), Some(v)) => Pred::guard(format!("{e} = {}", double(v))),
                _ => Pred::False,
            },
            Matcher::Bool(b) => s.boolean.as_ref().map_or(Pred::False, |e| Pred::guard(format!("{e} = '{b}'"))),
            Matcher::Null => s.is_null(),
            Matcher::Prefix(p) => text(&|e| l.like(e, &[p, ""], false)),
            Matcher::PrefixIgnoreCase(p) => text(&|e| l.like(e, &[p, ""], true)),
            Matcher::Suffix(p) => text(&|e| l.like(e, &["", p], false)),
            Matcher::SuffixIgnoreCase(p) => text(&|e| l.like(e, &["", p], true)),
            Matcher::EqualsIgnoreCase(p) => text(&|e| l.one_of(e, [p], true)),
            Matcher::Wildcard(w) => {
                let pieces: Vec<&str> = w.segments.iter().map(String::as_str).collect();
                text(&|e| l.like(e, &pieces, false))
            }
            Matcher::Numeric(range) => s.number.as_ref().map_or(Pred::False, |e| numeric(e, range)),
            Matcher::Cidr(cidr) => match cidr.network {
                std::net::IpAddr::V4(net) => text(&|e| ipv4_in(e, u32::from(net), cidr.prefix)),
                std::net::IpAddr::V6(_) => return unsupported(path, "an IPv6 cidr block has no portable SQL form"),
            },
            Matcher::AnythingBut(but) => Pred::and([s.present(), self.excluded(but, s)?.not()]),
        })
    }

    /// Whether anything-but excludes the scalar. A value of another type is never excluded.
    fn excluded(&self, but: &AnythingBut, s: &Scalar) -> Result<Pred> {
        let l = self.literals;
        let text = |f: &dyn Fn(&str) -> Pred| s.text.as_deref().map_or(Pred::False, f);
        Ok(match but {
            AnythingBut::Strings(set) => text(&|e| l.one_of(e, set, false)),
            AnythingBut::Numbers(set) => s.number.as_ref().map_or(Pred::False, |e| {
                let values: Vec<String> = set.iter().map(|n| double(*n as f64 / 1e6)).collect();
                Pred::and([in_numeric_range(e), Pred::guard(format!("{e} IN ({})", values.join(", ")))])
            }),
            AnythingBut::Prefixes(set) => Pred::or(set.iter().map(|p| text(&|e| l.like(e, &[p, ""], false)))),
            AnythingBut::Suffixes(set) => Pred::or(set.iter().map(|p| text(&|e| l.like(e, &["", p], false)))),
            AnythingBut::IgnoreCase(set) => text(&|e| l.one_of(e, set, true)),
            AnythingBut::Wildcards(set) => Pred::or(set.iter().map(|w| {
                let pieces: Vec<&str> = w.segments.iter().map(String::as_str).collect();
                text(&|e| l.like(e, &pieces, false))
            })),
        })
    }

    // -----------------------------------------------------------------------------------------
    // CloudWatch Logs filter patterns
    // -----------------------------------------------------------------------------------------

    /// The predicate for a JSON filter pattern on the raw record.
    pub fn filter_pattern(&mut self, pattern: &FilterPattern) -> Result<Pred> {
        self.expr(&pattern.root)
    }

    fn expr(&mut self, expr: &Expr) -> Result<Pred> {
        Ok(match expr {
            Expr::Or(terms) => Pred::or(terms.iter().map(|t| self.expr(t)).collect::<Result<Vec<_>>>()?),
            Expr::And(terms) => Pred::and(terms.iter().map(|t| self.expr(t)).collect::<Result<Vec<_>>>()?),
            Expr::Condition(c) => self.condition(c)?,
        })
    }

    /// A selector's value: no array search here, only explicit `[index]` steps.
    fn select(&self, steps: &[Step]) -> Result<(Val, String)> {
        let mut at = Val::Record;
        let mut shown = String::from("$");
        for step in steps {
            at = match (step, &at) {
                (Step::Key(k), _) => {
                    shown = format!("{shown}.{k}");
                    match at {
                        Val::Array(..) => Val::Missing,
                        _ => self.child(&at, k, &shown)?,
                    }
                }
                (Step::Index(i), Val::Array(cols, expr)) => {
                    shown = format!("{shown}[{i}]");
                    Val::Struct(cols, format!("element_at({expr}, {})", i + 1))
                }
                (Step::Index(i), Val::Json(value)) => {
                    shown = format!("{shown}[{i}]");
                    Val::Json(format!("json_extract({value}, '$[{i}]')"))
                }
                (Step::Index(i), Val::Map) => {
                    return unsupported(&format!("{shown}[{i}]"), "map fields are not compiled");
                }
                (Step::Index(i), _) => {
                    shown = format!("{shown}[{i}]");
                    Val::Missing
                }
            };
        }
        Ok((at, shown))
    }

    fn condition(&mut self, c: &Condition) -> Result<Pred> {
        let (at, shown) = self.select(&c.selector)?;
        let scalar = match &at {
            Val::Scalar(s) => Some(s.clone()),
            Val::Json(v) => Some(Scalar::json(v)),
            _ => None,
        };
        let null_unknown = |what: &str| -> Result<Pred> {
            unsupported(&shown, format!("{what}: the table stores a null object and a missing one alike"))
        };
        // A comparison needs a value node: a string or a number.
        let Some(s) = scalar else {
            return match (&at, &c.test) {
                (Val::JsonColumn(_), Test::IsNull) => null_unknown("IS NULL"),
                (Val::JsonColumn(_), Test::NotExists) => null_unknown("NOT EXISTS"),
                (Val::Map, _) => unsupported(&shown, "map fields are not compiled"),
                (Val::Missing, Test::NotExists) => Ok(Pred::True),
                (Val::Struct(_, e) | Val::Array(_, e), Test::NotExists) => Ok(Pred::exact(format!("({e} IS NULL)"))),
                _ => Ok(Pred::False),
            };
        };
        let value_node = Pred::or([
            s.text.as_ref().map_or(Pred::False, |t| Pred::exact(format!("({t} IS NOT NULL)"))),
            s.number.as_ref().map_or(Pred::False, |n| Pred::exact(format!("({n} IS NOT NULL)"))),
        ]);
        Ok(match &c.test {
            Test::Equal(literal) => self.equal(literal, &s),
            Test::NotEqual(literal) => Pred::and([value_node, self.equal(literal, &s).not()]),
            Test::OneOf(set) => Pred::or([
                s.text.as_ref().map_or(Pred::False, |t| self.literals.one_of(t, set, false)),
                s.number_text.as_ref().map_or(Pred::False, |t| self.literals.one_of(t, set, false)),
            ]),
            Test::Compare(op, bound) => s
                .number
                .as_ref()
                .map_or(Pred::False, |n| Pred::guard(format!("{n} {} {}", comparison(*op), double(*bound)))),
            Test::IsNull => s.is_null(),
            Test::IsTrue => s.boolean.as_ref().map_or(Pred::False, |b| Pred::guard(format!("{b} = 'true'"))),
            Test::IsFalse => s.boolean.as_ref().map_or(Pred::False, |b| Pred::guard(format!("{b} = 'false'"))),
            Test::NotExists => match &at {
                Val::Json(v) => Pred::exact(format!("({v} IS NULL)")),
                _ => s.present().not(),
            },
        })
    }

    /// `= literal`: a number literal compares numerically with a number and as written with a
    /// string; a string literal (with `*` at either end) compares with a string, or with a
    /// number's text.
    fn equal(&self, literal: &Literal, s: &Scalar) -> Pred {
        let number = match (literal.number, &s.number) {
            (Some(x), Some(n)) => Pred::guard(format!("{n} = {}", double(x))),
            _ => Pred::False,
        };
        let number_text = match (literal.number, &s.number_text) {
            (None, Some(t)) => self.shape(t, &literal.shape),
            _ => Pred::False,
        };
        let text = s.text.as_ref().map_or(Pred::False, |t| self.shape(t, &literal.shape));
        Pred::or([number, number_text, text])
    }

    fn shape(&self, expr: &str, shape: &Text) -> Pred {
        let l = self.literals;
        match shape {
            Text::Exact(t) => l.one_of(expr, [t], false),
            Text::Prefix(c) => l.like(expr, &[c, ""], false),
            Text::Suffix(c) => l.like(expr, &["", c], false),
            Text::Contains(c) => l.like(expr, &["", c, ""], false),
            Text::Anything => Pred::exact(format!("({expr} IS NOT NULL)")),
        }
    }
}

fn comparison(op: Comparison) -> &'static str {
    op.symbol()
}

/// Numbers event-ruler can compare: within +/-5e9.
fn in_numeric_range(expr: &str) -> Pred {
    let limit = NUMERIC_LIMIT as f64;
    Pred::guard(format!("{expr} BETWEEN {} AND {}", double(-limit), double(limit)))
}

fn numeric(expr: &str, range: &Range) -> Pred {
    let bound = |(millionths, inclusive): (i64, bool), below: bool| {
        let op = match (below, inclusive) {
            (true, true) => "<=",
            (true, false) => "<",
            (false, true) => ">=",
            (false, false) => ">",
        };
        Pred::guard(format!("{expr} {op} {}", double(millionths as f64 / 1e6)))
    };
    Pred::and([
        in_numeric_range(expr),
        range.lower.map_or(Pred::True, |b| bound(b, false)),
        range.upper.map_or(Pred::True, |b| bound(b, true)),
    ])
}

/// Whether the string `expr` is a dotted-quad IPv4 address, written as Rust's parser accepts it
/// (four decimal octets, no leading zeros, no signs or spaces), inside `network/prefix`.
fn ipv4_in(expr: &str, network: u32, prefix: u32) -> Pred {
    let octet = |i: usize| format!("split_part({expr}, '.', {i})");
    let value = |i: usize| format!("TRY_CAST({} AS INTEGER)", octet(i));
    let mut checks = vec![Pred::guard(format!("length({expr}) - length(replace({expr}, '.', '')) = 3"))];
    for i in 1..=4 {
        // Round-tripping through an integer rejects leading zeros, signs, spaces and empty parts.
        checks.push(Pred::guard(format!("{} BETWEEN 0 AND 255", value(i))));
        checks.push(Pred::guard(format!("CAST({} AS VARCHAR) = {}", value(i), octet(i))));
    }
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    let low = u64::from(network & mask);
    let high = low + u64::from(!mask);
    let number = format!(
        "({} * 16777216 + {} * 65536 + {} * 256 + {})",
        format!("CAST({} AS BIGINT)", value(1)),
        value(2),
        value(3),
        value(4)
    );
    checks.push(Pred::guard(format!("{number} BETWEEN {low} AND {high}")));
    Pred::and(checks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn literals() -> Literals {
        Literals { markers: Vec::new() }
    }

    fn rule(pattern: serde_json::Value) -> Result<String> {
        let p = EventPattern::parse(&pattern).unwrap();
        let l = literals();
        Compiler::new(&l).event_pattern(&p).map(|p| p.render())
    }

    fn filter(pattern: &str) -> Result<String> {
        let p = FilterPattern::parse(pattern).unwrap();
        let l = literals();
        Compiler::new(&l).filter_pattern(&p).map(|p| p.render())
    }

    #[test]
    fn exact_values_become_in_lists_on_columns() {
        let sql = rule(json!({"detail": {"eventName": ["B", "A"], "eventSource": ["ec2.amazonaws.com"]}})).unwrap();
        assert_eq!(
            sql,
            "(COALESCE(eventname IN ('A', 'B'), FALSE) AND COALESCE(eventsource = 'ec2.amazonaws.com', FALSE))"
        );
    }

    #[test]
    fn envelope_fields_derive_from_the_record() {
        let sql = rule(json!({"source": ["aws.ec2"], "detail-type": ["AWS API Call via CloudTrail"]})).unwrap();
        assert!(sql.contains("ctguard_source = 'aws.ec2'"), "{sql}");
        assert!(sql.contains("ctguard_detail_type = 'AWS API Call via CloudTrail'"), "{sql}");
        let derived = derived_columns("000000000000").join(", ");
        assert!(derived.contains("WHEN eventsource LIKE '%.amazonaws.com' THEN 'aws.' || substr("), "{derived}");
        assert!(derived.contains("(CASE eventtype WHEN 'AwsConsoleSignIn' THEN 'AWS Console Sign In via"), "{derived}");
        // The envelope's resources are always empty: nothing matches there.
        assert_eq!(rule(json!({"resources": ["x"]})).unwrap(), "FALSE");
        assert_eq!(rule(json!({"resources": [{"exists": false}]})).unwrap(), "TRUE");
    }

    #[test]
    fn json_fields_are_typed_and_searched_through_arrays() {
        let sql = rule(json!({"detail": {"requestParameters": {"enable": [false]}}})).unwrap();
        assert!(sql.contains("json_extract(requestparameters, '$.enable')"), "{sql}");
        assert!(sql.contains("any_match(COALESCE(TRY_CAST("), "{sql}");
        assert!(sql.contains("IN ('true', 'false') THEN json_format(x2) END) = 'false'"), "{sql}");
    }

    #[test]
    fn what_the_table_cannot_say_is_refused_by_name() {
        let e = rule(json!({"detail": {"managementEvent": [true]}})).unwrap_err();
        assert_eq!(e.at, "detail.managementEvent");
        let e = rule(json!({"detail": {"requestParameters": [null]}})).unwrap_err();
        assert_eq!(e.at, "detail.requestParameters");
        let e = rule(json!({"detail": {"sourceIPAddress": ["::1"]}})).unwrap_err();
        assert!(e.why.contains("IPv6"), "{e:?}");
        let e = rule(json!({"detail": {"requestParameters": {"a-b": ["x"]}}})).unwrap_err();
        assert_eq!(e.at, "detail.requestParameters.a-b");
        let e = filter("{ $.requestParameters IS NULL }").unwrap_err();
        assert_eq!(e.at, "$.requestParameters");
        let e = filter("{ $.userIdentity.sessionContext.webIdFederationData.attributes.x = 1 }").unwrap_err();
        assert!(e.why.contains("map"), "{e:?}");
    }

    #[test]
    fn filter_patterns_compare_value_nodes_only() {
        assert_eq!(
            filter("{ $.eventName = \"Stop*\" }").unwrap(),
            "COALESCE(eventname LIKE 'Stop%' ESCAPE '\\', FALSE)"
        );
        // readOnly is a boolean: never a value node.
        assert_eq!(filter("{ $.readOnly = \"false\" }").unwrap(), "FALSE");
        assert_eq!(filter("{ $.readOnly IS FALSE }").unwrap(), "COALESCE(readonly = 'false', FALSE)");
        assert_eq!(filter("{ $.errorCode NOT EXISTS }").unwrap(), "(NOT (errorcode IS NOT NULL))");
        assert_eq!(
            filter("{ $.resources[1].ARN = \"a\" }").unwrap(),
            "COALESCE(element_at(resources, 2).arn = 'a', FALSE)"
        );
        assert_eq!(filter("{ $.eventName.x NOT EXISTS }").unwrap(), "TRUE");
        assert_eq!(filter("{ $.eventName > 5 }").unwrap(), "FALSE");
    }

    #[test]
    fn ipv4_cidr_is_arithmetic_on_canonical_quads() {
        let sql = rule(json!({"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/8"}]}})).unwrap();
        assert!(sql.contains("BETWEEN 167772160 AND 184549375"), "{sql}");
    }
}
