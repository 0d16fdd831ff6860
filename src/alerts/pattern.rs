//! CloudWatch Logs' JSON filter patterns, so that a metric filter copied from the CIS
//! benchmark, AWS's documentation or an existing account works here unchanged:
//! `{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") }`.
//!
//! The semantics are AWS's, from "Filter pattern syntax for metric filters, subscription
//! filters, filter log events, and Live Tail" and "Using filter patterns to match terms in JSON
//! log events" (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html>,
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/matching-terms-json-log-events.html>),
//! and, where the current pages are terse, the 2021 revision of the same page in AWS's own
//! archived guide (awsdocs/amazon-cloudwatch-logs-user-guide, FilterAndPatternSyntax.md):
//!
//! - `{ SELECTOR = STRING }`, `!=`; `{ SELECTOR OP NUMBER }` with `= != < <= > >=`; postfix
//!   `IS NULL`, `IS TRUE`, `IS FALSE`, `NOT EXISTS`; `&&`, `||` and parentheses, with the
//!   documented order "() > && > ||".
//! - Selectors: `$.a.b`, array elements `$.a[0]`, a wildcard `[*]` or `.*` (at most one per
//!   selector, three per pattern), and `$.['key.with.dots']`.
//! - A selector must reach a value node (a string or a number): one that reaches an array, an
//!   object, or nothing matches neither `=` nor `!=` ("both {$.users = 1} and {$.users != 1}
//!   will fail to match a log event where users is an array"). So `!=` on a missing field does
//!   not match; AWS does not say so in words, but the service behaves that way (seen by
//!   others: DataBiosphere/azul#5884), and `NOT EXISTS` is the documented test for absence.
//! - Strings, quoted or (when they hold no operator or space) not: `*` is a wildcard at the
//!   start or the end ("*Event", "Event*"), matching any text including none; in the middle it
//!   is a literal ("Ev*ent will only match the actual string Ev*ent"). A bare `*` matches any
//!   value node. Comparisons are exact and case-sensitive. A quoted string compares with
//!   strings only; an unquoted numeral compares with numbers by value and with strings by its
//!   text (so `$.recipientAccountId = 012345678901` matches the account id, which CloudTrail
//!   writes as a string); with a value of the other type, neither `=` nor `!=` matches. AWS
//!   does not document how types mix; this keeps `=` and `!=` each other's opposite wherever
//!   either matches.
//! - `%regex%`: unanchored (a substring search unless `^`/`$` say otherwise), from AWS's
//!   restricted set (no parentheses, no multi-byte characters), at most two per pattern.
//! - At most 1024 characters (the MetricFilter API's limit).
//!
//! One extension: `EXISTS` (the selector reaches anything, even `null`), which CloudWatch
//! rejects ("IS NOT and EXISTS currently aren't supported"); write `= *` for a value node there.

use std::collections::HashSet;
use std::fmt;

use serde_json::Value;

/// CloudWatch's limit on a filter pattern's length (MetricFilter.filterPattern).
pub const MAX_LEN: usize = 1024;
const MAX_REGEXES: usize = 2;
const MAX_WILDCARD_SELECTORS: usize = 3;
/// Parentheses nest at most this deep: a pattern must not be able to exhaust the stack.
const MAX_DEPTH: usize = 64;

/// A parsed filter pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    expr: Expr,
}

#[derive(Debug, Clone)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Test(Test),
}

#[derive(Debug, Clone)]
struct Test {
    selector: Vec<Step>,
    /// No wildcard in the selector.
    plain: bool,
    check: Check,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    /// `[*]` or `.*`: any element or field.
    Any,
}

#[derive(Debug, Clone)]
enum Check {
    /// `=` / `!=` a string (or `*`).
    Text {
        equal: bool,
        matcher: Text,
    },
    /// `=`, `!=`, `<`, `<=`, `>`, `>=` a number; `text` is the numeral as written, which `=`
    /// and `!=` also compare with strings.
    Number {
        op: Op,
        value: f64,
        text: String,
    },
    Regex {
        equal: bool,
        regex: regex_lite::Regex,
    },
    /// `||` of `= "exact"` on one path, as CIS writes eventName lists: one lookup, not one per
    /// name (built by [`Expr::fold_sets`], never parsed).
    OneOf(HashSet<String>),
    IsNull,
    IsTrue,
    IsFalse,
    NotExists,
    Exists,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Text {
    /// A bare `*`: any value node.
    Any,
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
}

/// Why a pattern does not parse: where (a 1-based column, in characters) and what was
/// expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct PatternError {
    pub column: usize,
    pub message: String,
}

impl PatternError {
    /// The pattern with a caret under the column, for a terminal.
    pub fn pointed(&self, pattern: &str) -> String {
        format!(
            "{pattern}\n{}^ {}",
            " ".repeat(self.column.saturating_sub(1)),
            self.message
        )
    }
}

/// Two patterns are the same when their texts are (what a configuration compares).
impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.text == other.text
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        if text.chars().count() > MAX_LEN {
            return Err(PatternError {
                column: MAX_LEN + 1,
                message: format!(
                    "a filter pattern is at most {MAX_LEN} characters (CloudWatch's limit)"
                ),
            });
        }
        let tokens = lex(text)?;
        let mut p = Parser {
            tokens,
            at: 0,
            end: text.chars().count() + 1,
            regexes: 0,
            wildcards: 0,
            depth: 0,
        };
        p.expect(
            &Tok::Open,
            "`{`: only JSON filter patterns (`{ ... }`) apply to CloudTrail records",
        )?;
        let expr = p.or()?;
        p.expect(&Tok::Close, "`&&`, `||` or the closing `}`")?;
        if let Some(t) = p.tokens.get(p.at) {
            return Err(PatternError {
                column: t.column,
                message: format!("nothing may follow the closing `}}`, found {}", t.tok),
            });
        }
        Ok(Pattern {
            text: text.to_owned(),
            expr: expr.fold_sets(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether a JSON record (one CloudTrail record) matches.
    pub fn matches(&self, record: &Value) -> bool {
        self.expr.eval(record)
    }

    /// Each selector's leading field names (up to its first index or wildcard, if any). A
    /// record cut down to these paths, with the values where they end kept whole, matches
    /// exactly as the whole record does. An empty path: the whole record is needed.
    pub fn paths(&self) -> Vec<Vec<&str>> {
        let mut out = Vec::new();
        self.expr.paths(&mut out);
        out
    }
}

impl Expr {
    /// The same expression, with each `||` group of exact-string `=` tests on one plain path
    /// (`$.eventName = A || $.eventName = B ...`) made one set test. The same matches: on a
    /// plain path a test sees at most one node, which equals one of the strings or none.
    fn fold_sets(self) -> Expr {
        match self {
            Expr::And(all) => Expr::And(all.into_iter().map(Expr::fold_sets).collect()),
            Expr::Or(any) => {
                let mut rest: Vec<Expr> = Vec::new();
                let mut sets: Vec<(Vec<Step>, HashSet<String>)> = Vec::new();
                for e in any.into_iter().map(Expr::fold_sets) {
                    match e {
                        Expr::Test(Test {
                            selector,
                            plain: true,
                            check:
                                Check::Text {
                                    equal: true,
                                    matcher: Text::Exact(x),
                                },
                        }) => match sets.iter_mut().find(|(s, _)| *s == selector) {
                            Some((_, set)) => {
                                set.insert(x);
                            }
                            None => sets.push((selector, HashSet::from([x]))),
                        },
                        other => rest.push(other),
                    }
                }
                for (selector, set) in sets {
                    let check = if set.len() == 1 {
                        Check::Text {
                            equal: true,
                            matcher: Text::Exact(set.into_iter().next().expect("one element")),
                        }
                    } else {
                        Check::OneOf(set)
                    };
                    rest.push(Expr::Test(Test {
                        selector,
                        plain: true,
                        check,
                    }));
                }
                if rest.len() == 1 {
                    rest.pop().expect("one element")
                } else {
                    Expr::Or(rest)
                }
            }
            test => test,
        }
    }

    fn paths<'p>(&'p self, out: &mut Vec<Vec<&'p str>>) {
        match self {
            Expr::And(all) | Expr::Or(all) => all.iter().for_each(|e| e.paths(out)),
            Expr::Test(t) => out.push(
                t.selector
                    .iter()
                    .map_while(|step| match step {
                        Step::Field(name) => Some(name.as_str()),
                        _ => None,
                    })
                    .collect(),
            ),
        }
    }

    fn eval(&self, record: &Value) -> bool {
        match self {
            Expr::And(all) => all.iter().all(|e| e.eval(record)),
            Expr::Or(any) => any.iter().any(|e| e.eval(record)),
            Expr::Test(t) => t.eval(record),
        }
    }
}

impl Test {
    fn eval(&self, record: &Value) -> bool {
        // A path of field names and indices reaches at most one node: no list to build (the
        // rules run on every record, and nearly every selector is such a path).
        if self.plain {
            let mut at = Some(record);
            for step in &self.selector {
                at = match (step, at) {
                    (Step::Field(name), Some(Value::Object(map))) => map.get(name),
                    (Step::Index(i), Some(Value::Array(items))) => items.get(*i),
                    _ => None,
                };
            }
            return self.check(at.as_slice());
        }
        let mut found = Vec::new();
        resolve(record, &self.selector, &mut found);
        self.check(&found)
    }

    fn check(&self, found: &[&Value]) -> bool {
        match &self.check {
            Check::OneOf(set) => found
                .iter()
                .any(|v| matches!(v, Value::String(s) if set.contains(s.as_str()))),
            Check::NotExists => found.is_empty(),
            Check::Exists => !found.is_empty(),
            Check::IsNull => found.iter().any(|v| v.is_null()),
            Check::IsTrue => found.contains(&&Value::Bool(true)),
            Check::IsFalse => found.contains(&&Value::Bool(false)),
            Check::Text { equal, matcher } => found.iter().any(|v| match v {
                Value::String(s) => matcher.matches(s) == *equal,
                // Only `= *` takes a number ("any value node").
                Value::Number(_) => *equal && matches!(matcher, Text::Any),
                _ => false,
            }),
            Check::Regex { equal, regex } => found.iter().any(|v| match v {
                Value::String(s) => regex.is_match(s) == *equal,
                Value::Number(n) => regex.is_match(&n.to_string()) == *equal,
                _ => false,
            }),
            Check::Number { op, value, text } => found.iter().any(|v| match v {
                Value::Number(n) => n.as_f64().is_some_and(|n| op.holds(n, *value)),
                Value::String(s) => match op {
                    Op::Eq => s == text,
                    Op::Ne => s != text,
                    _ => false,
                },
                _ => false,
            }),
        }
    }
}

/// Every node the selector reaches.
fn resolve<'v>(at: &'v Value, steps: &[Step], out: &mut Vec<&'v Value>) {
    let Some((step, rest)) = steps.split_first() else {
        out.push(at);
        return;
    };
    match (step, at) {
        (Step::Field(name), Value::Object(map)) => {
            if let Some(v) = map.get(name) {
                resolve(v, rest, out);
            }
        }
        (Step::Index(i), Value::Array(items)) => {
            if let Some(v) = items.get(*i) {
                resolve(v, rest, out);
            }
        }
        (Step::Any, Value::Array(items)) => {
            for v in items {
                resolve(v, rest, out);
            }
        }
        (Step::Any, Value::Object(map)) => {
            for v in map.values() {
                resolve(v, rest, out);
            }
        }
        _ => {}
    }
}

impl Op {
    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Op::Eq => left == right,
            Op::Ne => left != right,
            Op::Lt => left < right,
            Op::Le => left <= right,
            Op::Gt => left > right,
            Op::Ge => left >= right,
        }
    }
}

impl Text {
    fn of(value: &str) -> Text {
        if value == "*" {
            return Text::Any;
        }
        match (value.strip_prefix('*'), value.strip_suffix('*')) {
            (Some(rest), _) if rest.ends_with('*') && !rest.is_empty() => {
                Text::Contains(rest[..rest.len() - 1].to_owned())
            }
            (Some(rest), _) => Text::Suffix(rest.to_owned()),
            (None, Some(rest)) => Text::Prefix(rest.to_owned()),
            (None, None) => Text::Exact(value.to_owned()),
        }
    }

    fn matches(&self, s: &str) -> bool {
        match self {
            Text::Any => true,
            Text::Exact(x) => s == x,
            Text::Prefix(x) => s.starts_with(x.as_str()),
            Text::Suffix(x) => s.ends_with(x.as_str()),
            Text::Contains(x) => s.contains(x.as_str()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lexing.

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    LParen,
    RParen,
    And,
    Or,
    Op(Op),
    Selector(Vec<Step>),
    /// A quoted string.
    Quoted(String),
    /// An unquoted word: a number, a string, or a keyword.
    Word(String),
    /// `%...%`
    Regex(String),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Open => f.write_str("`{`"),
            Tok::Close => f.write_str("`}`"),
            Tok::LParen => f.write_str("`(`"),
            Tok::RParen => f.write_str("`)`"),
            Tok::And => f.write_str("`&&`"),
            Tok::Or => f.write_str("`||`"),
            Tok::Op(op) => write!(
                f,
                "`{}`",
                match op {
                    Op::Eq => "=",
                    Op::Ne => "!=",
                    Op::Lt => "<",
                    Op::Le => "<=",
                    Op::Gt => ">",
                    Op::Ge => ">=",
                }
            ),
            Tok::Selector(_) => f.write_str("a selector"),
            Tok::Quoted(s) => write!(f, "{s:?}"),
            Tok::Word(w) => write!(f, "`{w}`"),
            Tok::Regex(r) => write!(f, "`%{r}%`"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    column: usize,
}

fn lex(text: &str) -> Result<Vec<Token>, PatternError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let err = |i: usize, message: String| PatternError {
        column: i + 1,
        message,
    };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let two = |s: &str| chars[i..].iter().take(2).collect::<String>() == s;
        let tok = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '{' => {
                i += 1;
                Tok::Open
            }
            '}' => {
                i += 1;
                Tok::Close
            }
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            '&' if two("&&") => {
                i += 2;
                Tok::And
            }
            '|' if two("||") => {
                i += 2;
                Tok::Or
            }
            '!' if two("!=") => {
                i += 2;
                Tok::Op(Op::Ne)
            }
            '<' if two("<=") => {
                i += 2;
                Tok::Op(Op::Le)
            }
            '>' if two(">=") => {
                i += 2;
                Tok::Op(Op::Ge)
            }
            '<' => {
                i += 1;
                Tok::Op(Op::Lt)
            }
            '>' => {
                i += 1;
                Tok::Op(Op::Gt)
            }
            '=' if two("==") => {
                return Err(err(
                    i,
                    "found `==`: the operator is a single `=`".to_owned(),
                ));
            }
            '=' => {
                i += 1;
                Tok::Op(Op::Eq)
            }
            '&' | '|' | '!' => {
                return Err(err(
                    i,
                    format!("found a lone `{c}`: the operators are `&&`, `||` and `!=`"),
                ));
            }
            '"' => {
                let (s, next) = quoted(&chars, i, '"').map_err(|at| {
                    err(
                        at,
                        "a string is not closed: expected its closing `\"`".to_owned(),
                    )
                })?;
                i = next;
                Tok::Quoted(s)
            }
            '%' => {
                let Some(len) = chars[i + 1..].iter().position(|c| *c == '%') else {
                    return Err(err(
                        i,
                        "a regular expression is not closed: expected its closing `%`".to_owned(),
                    ));
                };
                let r: String = chars[i + 1..i + 1 + len].iter().collect();
                i += len + 2;
                Tok::Regex(r)
            }
            '$' => {
                let (steps, next) = selector(&chars, i)?;
                i = next;
                Tok::Selector(steps)
            }
            _ => {
                let len = chars[i..]
                    .iter()
                    .position(|c| c.is_whitespace() || "{}()&|=!<>\"%$".contains(*c))
                    .unwrap_or(chars.len() - i);
                i += len;
                Tok::Word(chars[start..i].iter().collect())
            }
        };
        tokens.push(Token {
            tok,
            column: start + 1,
        });
    }
    Ok(tokens)
}

/// A string quoted by `quote` starting at `at`; backslash escapes the quote and itself.
/// Returns the string and the index after it, or where the unclosed string started.
fn quoted(chars: &[char], at: usize, quote: char) -> Result<(String, usize), usize> {
    let mut s = String::new();
    let mut i = at + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() && (chars[i + 1] == quote || chars[i + 1] == '\\') => {
                s.push(chars[i + 1]);
                i += 2;
            }
            c if c == quote => return Ok((s, i + 1)),
            c => {
                s.push(c);
                i += 1;
            }
        }
    }
    Err(at)
}

/// `$.a.b[0].*` or `$.['a.b']`, from the `$` at `at`.
fn selector(chars: &[char], at: usize) -> Result<(Vec<Step>, usize), PatternError> {
    let err = |i: usize, message: &str| PatternError {
        column: i + 1,
        message: message.to_owned(),
    };
    let mut i = at + 1;
    let mut steps = Vec::new();
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    loop {
        match chars.get(i) {
            Some('.') if chars.get(i + 1) == Some(&'[') => {
                i += 1;
            }
            Some('.') => {
                i += 1;
                if chars.get(i) == Some(&'*') {
                    steps.push(Step::Any);
                    i += 1;
                    continue;
                }
                let len = chars[i..].iter().take_while(|c| ident(**c)).count();
                if len == 0 {
                    return Err(err(
                        i,
                        "expected a property name after `.` (letters, digits, `-`, `_`), `*`, \
                         or `['name']`",
                    ));
                }
                steps.push(Step::Field(chars[i..i + len].iter().collect()));
                i += len;
            }
            Some('[') => {
                i += 1;
                match chars.get(i) {
                    Some('*') => {
                        steps.push(Step::Any);
                        i += 1;
                    }
                    Some('\'') | Some('"') => {
                        let q = chars[i];
                        let (name, next) = quoted(chars, i, q)
                            .map_err(|at| err(at, "a quoted property name is not closed"))?;
                        steps.push(Step::Field(name));
                        i = next;
                    }
                    Some(c) if c.is_ascii_digit() => {
                        let len = chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
                        let n: String = chars[i..i + len].iter().collect();
                        let n = n
                            .parse()
                            .map_err(|_| err(i, "an array index is too large"))?;
                        steps.push(Step::Index(n));
                        i += len;
                    }
                    _ => {
                        return Err(err(
                            i,
                            "expected an array index, `*` or a quoted name after `[`",
                        ))
                    }
                }
                if chars.get(i) != Some(&']') {
                    return Err(err(i, "expected `]`"));
                }
                i += 1;
            }
            _ => break,
        }
        if steps.len() > 64 {
            return Err(err(i, "a selector is at most 64 steps deep"));
        }
    }
    if steps.is_empty() {
        return Err(err(
            at,
            "a selector starts with `$.` and names a property, such as `$.eventName`",
        ));
    }
    if steps.iter().filter(|s| **s == Step::Any).count() > 1 {
        return Err(err(
            at,
            "a selector may hold one wildcard (`[*]` or `.*`) at most (CloudWatch's limit)",
        ));
    }
    Ok((steps, i))
}

// ---------------------------------------------------------------------------------------------
// Parsing: or := and ('||' and)*; and := primary ('&&' primary)*; primary := '(' or ')' | test.

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    /// The column after the last character, for "expected ... at the end".
    end: usize,
    regexes: usize,
    wildcards: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at).map(|t| &t.tok)
    }

    fn column(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |t| t.column)
    }

    fn fail<T>(&self, expected: &str) -> Result<T, PatternError> {
        let found = match self.tokens.get(self.at) {
            Some(t) => t.tok.to_string(),
            None => "the end of the pattern".to_owned(),
        };
        Err(PatternError {
            column: self.column(),
            message: format!("expected {expected}, found {found}"),
        })
    }

    fn expect(&mut self, tok: &Tok, expected: &str) -> Result<(), PatternError> {
        if self.peek() == Some(tok) {
            self.at += 1;
            Ok(())
        } else {
            self.fail(expected)
        }
    }

    fn or(&mut self) -> Result<Expr, PatternError> {
        let mut any = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.at += 1;
            any.push(self.and()?);
        }
        Ok(if any.len() == 1 {
            any.remove(0)
        } else {
            Expr::Or(any)
        })
    }

    fn and(&mut self) -> Result<Expr, PatternError> {
        let mut all = vec![self.primary()?];
        while self.peek() == Some(&Tok::And) {
            self.at += 1;
            all.push(self.primary()?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Expr::And(all)
        })
    }

    fn primary(&mut self) -> Result<Expr, PatternError> {
        match self.peek() {
            Some(Tok::LParen) => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(PatternError {
                        column: self.column(),
                        message: format!("parentheses nest at most {MAX_DEPTH} deep"),
                    });
                }
                self.at += 1;
                let e = self.or()?;
                self.expect(&Tok::RParen, "`&&`, `||` or `)`")?;
                self.depth -= 1;
                Ok(e)
            }
            Some(Tok::Selector(_)) => self.test(),
            _ => self.fail("a selector such as `$.eventName`, or `(`"),
        }
    }

    fn test(&mut self) -> Result<Expr, PatternError> {
        let Some(Tok::Selector(selector)) = self.peek().cloned() else {
            return self.fail("a selector");
        };
        let selector_column = self.column();
        self.at += 1;
        if selector.contains(&Step::Any) {
            self.wildcards += 1;
            if self.wildcards > MAX_WILDCARD_SELECTORS {
                return Err(PatternError {
                    column: selector_column,
                    message: format!(
                        "a pattern may hold {MAX_WILDCARD_SELECTORS} wildcard selectors at most \
                         (CloudWatch's limit)"
                    ),
                });
            }
        }
        let check = match self.peek().cloned() {
            Some(Tok::Op(op)) => {
                self.at += 1;
                self.value(op)?
            }
            Some(Tok::Word(w)) if w == "IS" => {
                self.at += 1;
                let check = match self.peek() {
                    Some(Tok::Word(w)) if w == "NULL" => Check::IsNull,
                    Some(Tok::Word(w)) if w == "TRUE" => Check::IsTrue,
                    Some(Tok::Word(w)) if w == "FALSE" => Check::IsFalse,
                    Some(Tok::Word(w)) if w == "NOT" => {
                        return Err(PatternError {
                            column: self.column(),
                            message: "`IS NOT` is not supported (as in CloudWatch): use `!=`, \
                                      or `NOT EXISTS`"
                                .to_owned(),
                        })
                    }
                    _ => return self.fail("`NULL`, `TRUE` or `FALSE` after `IS`"),
                };
                self.at += 1;
                check
            }
            Some(Tok::Word(w)) if w == "NOT" => {
                self.at += 1;
                match self.peek() {
                    Some(Tok::Word(w)) if w == "EXISTS" => {
                        self.at += 1;
                        Check::NotExists
                    }
                    _ => return self.fail("`EXISTS` after `NOT`"),
                }
            }
            Some(Tok::Word(w)) if w == "EXISTS" => {
                self.at += 1;
                Check::Exists
            }
            _ => {
                return self.fail(
                    "an operator (`=`, `!=`, `<`, `<=`, `>`, `>=`) or `IS NULL`, `IS TRUE`, \
                     `IS FALSE`, `NOT EXISTS`, `EXISTS`",
                )
            }
        };
        let plain = !selector.contains(&Step::Any);
        Ok(Expr::Test(Test {
            selector,
            plain,
            check,
        }))
    }

    fn value(&mut self, op: Op) -> Result<Check, PatternError> {
        let column = self.column();
        let Some(tok) = self.peek().cloned() else {
            return self.fail("a value: a string, a number, `*` or `%regex%`");
        };
        let numeric = matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge);
        let check = match tok {
            Tok::Word(w) => match number(&w) {
                Some(value) => Check::Number {
                    op,
                    value,
                    text: w.clone(),
                },
                None if w == "*" && !numeric => Check::Text {
                    equal: op == Op::Eq,
                    matcher: Text::Any,
                },
                None if numeric => {
                    return Err(PatternError {
                        column,
                        message: format!("{} compares numbers, found `{w}`", Tok::Op(op)),
                    })
                }
                None => Check::Text {
                    equal: op == Op::Eq,
                    matcher: Text::of(&w),
                },
            },
            Tok::Quoted(s) if !numeric => Check::Text {
                equal: op == Op::Eq,
                matcher: Text::of(&s),
            },
            Tok::Regex(r) if !numeric => {
                self.regexes += 1;
                if self.regexes > MAX_REGEXES {
                    return Err(PatternError {
                        column,
                        message: format!(
                            "a pattern may hold {MAX_REGEXES} regular expressions at most \
                             (CloudWatch's limit)"
                        ),
                    });
                }
                Check::Regex {
                    equal: op == Op::Eq,
                    regex: regex(&r, column)?,
                }
            }
            _ if numeric => {
                return Err(PatternError {
                    column,
                    message: format!("{} compares numbers, found {tok}", Tok::Op(op)),
                })
            }
            _ => return self.fail("a value: a string, a number, `*` or `%regex%`"),
        };
        self.at += 1;
        Ok(check)
    }
}

/// A number as CloudWatch writes one: an optional sign, digits, an optional fraction and
/// exponent (`1e+3`, `-5`, `55.5`).
fn number(w: &str) -> Option<f64> {
    let body = w.strip_prefix(['+', '-']).unwrap_or(w);
    let starts_with_digit = body.chars().next().is_some_and(|c| c.is_ascii_digit());
    let only_number_chars = body
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    if !starts_with_digit || !only_number_chars {
        return None;
    }
    w.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A `%regex%` body, within CloudWatch's set: alphanumerics, `:_#=@/;,-`, the operators
/// `^$?[]{}|\*+.` and spaces; no parentheses, no multi-byte characters.
fn regex(body: &str, column: usize) -> Result<regex_lite::Regex, PatternError> {
    if let Some((i, c)) = body
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || ":_#=@/;,-^$?[]{}|\\*+. ".contains(*c)))
    {
        let why = match c {
            '(' | ')' => {
                "parentheses are not supported in CloudWatch's regular expressions".to_owned()
            }
            c if !c.is_ascii() => {
                "multi-byte characters are not supported in CloudWatch's regular expressions"
                    .to_owned()
            }
            c => format!("`{c}` is not among the characters CloudWatch's regular expressions take"),
        };
        return Err(PatternError {
            column: column + 1 + body[..i].chars().count(),
            message: why,
        });
    }
    regex_lite::Regex::new(body).map_err(|e| PatternError {
        column,
        message: format!("not a regular expression: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn m(pattern: &str, record: &Value) -> bool {
        Pattern::parse(pattern)
            .unwrap_or_else(|e| panic!("{}", e.pointed(pattern)))
            .matches(record)
    }

    /// AWS's sample event for its JSON examples.
    fn aws_sample() -> Value {
        json!({"user":{"id":1,"email":"John.Stiles@example.com"},
               "users":[{"id":2,"email":"John.Doe@example.com"},{"id":3,"email":"Jane.Doe@example.com"}],
               "actions":["GET","PUT","DELETE"],
               "coordinates":[[0,1,2],[4,5,6],[7,8,9]]})
    }

    #[test]
    fn aws_documented_examples_match_as_aws_says() {
        let e = aws_sample();
        // "() > && > ||": && binds tighter.
        assert!(m(
            r#"{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch" && $.actions[2] = "nonmatch" }"#,
            &e
        ));
        assert!(!m(
            r#"{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch") && $.actions[2] = "nonmatch" }"#,
            &e
        ));
        assert!(m(
            r#"{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }"#,
            &e
        ));
        assert!(!m(
            r#"{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }"#,
            &e
        ));
        // The 2021 page wrote the same without quotes.
        assert!(m(
            "{ $.user.email = John.Stiles@example.com || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }",
            &e
        ));
        assert!(m("{ $.coordinates[2][0] = 7 }", &e));
        assert!(m("{ $.users[*].email = \"Jane.Doe@example.com\" }", &e));
        assert!(m("{ $.actions[*] = %^DEL% }", &e));
        assert!(!m("{ $.actions[*] = %^del% }", &e));
    }

    #[test]
    fn a_selector_must_reach_a_value_node_for_equal_and_not_equal() {
        let e = json!({"users": [1, 2, 3], "o": {"a": 1}});
        assert!(!m("{ $.users = 1 }", &e));
        assert!(!m("{ $.users != 1 }", &e));
        assert!(!m("{ $.o != \"x\" }", &e));
        // Missing: neither.
        assert!(!m("{ $.missing = \"x\" }", &e));
        assert!(!m("{ $.missing != \"x\" }", &e));
        assert!(m("{ $.missing NOT EXISTS }", &e));
        assert!(!m("{ $.users NOT EXISTS }", &e));
        assert!(m("{ $.users EXISTS }", &e));
    }

    #[test]
    fn wildcards_are_at_the_ends_only_and_may_match_nothing() {
        let e = json!({"errorCode": "AccessDenied", "weird": "Ev*ent", "n": 42});
        assert!(m("{ $.errorCode = \"AccessDenied*\" }", &e));
        assert!(m("{ $.errorCode = \"*Denied\" }", &e));
        assert!(m("{ $.errorCode = \"*cessDen*\" }", &e));
        assert!(!m("{ $.errorCode = \"*UnauthorizedOperation\" }", &e));
        assert!(!m("{ $.errorCode = \"Acc*Denied\" }", &e));
        assert!(m("{ $.weird = \"Ev*ent\" }", &e));
        assert!(m("{ $.errorCode = * }", &e));
        assert!(m("{ $.n = * }", &e));
        assert!(!m("{ $.missing = * }", &e));
        assert!(
            !m("{ $.errorCode = \"accessdenied\" }", &e),
            "case-sensitive"
        );
    }

    #[test]
    fn numbers_compare_as_numbers_and_never_equal_strings() {
        let e = json!({"latency": 1000, "s": "1000", "f": 55.5});
        assert!(m("{ $.latency > +999 }", &e));
        assert!(m("{ $.latency >= 1e3 }", &e));
        assert!(m("{ $.latency = 1e+3 }", &e));
        assert!(!m("{ $.latency < 1000 }", &e));
        assert!(m("{ $.latency <= 1000 }", &e));
        assert!(m("{ $.latency != 5 }", &e));
        assert!(m("{ $.f <= 55.5 }", &e));
        // An unquoted numeral also compares with strings, by its text.
        assert!(m("{ $.s = 1000 }", &e));
        assert!(!m("{ $.s != 1000 }", &e));
        assert!(!m("{ $.s = 1e3 }", &e), "by its text, not its value");
        assert!(!m("{ $.s > 999 }", &e), "order is for numbers");
        let acct = json!({"recipientAccountId": "012345678901"});
        assert!(m("{ $.recipientAccountId = 012345678901 }", &acct));
        // A quoted string compares with strings only: neither = nor != with a number.
        assert!(!m("{ $.latency = \"1000\" }", &e));
        assert!(!m("{ $.latency != \"x\" }", &e));
    }

    #[test]
    fn is_null_true_false() {
        let e = json!({"a": null, "t": true, "f": false, "s": "true"});
        assert!(m("{ $.a IS NULL }", &e));
        assert!(!m("{ $.t IS NULL }", &e));
        assert!(!m("{ $.missing IS NULL }", &e));
        assert!(m("{ $.t IS TRUE }", &e));
        assert!(!m("{ $.s IS TRUE }", &e));
        assert!(m("{ $.f IS FALSE }", &e));
        assert!(!m("{ $.t IS FALSE }", &e));
    }

    #[test]
    fn keys_with_dots_and_quotes() {
        let e = json!({"cluster.name": "c", "q": "say \"hi\""});
        assert!(m("{ $.['cluster.name'] = \"c\" }", &e));
        assert!(m("{ $['cluster.name'] = c }", &e));
        assert!(m(r#"{ $.q = "say \"hi\"" }"#, &e));
    }

    #[test]
    fn errors_say_where_and_what_was_expected() {
        let cases = [
            ("$.a = 1", 1, "expected `{`: only JSON filter patterns"),
            (
                "{ $.a == 1 }",
                7,
                "found `==`: the operator is a single `=`",
            ),
            (
                "{ $.a = 1 ",
                11,
                "expected `&&`, `||` or the closing `}`, found the end of the pattern",
            ),
            ("{ ($.a = 1 }", 12, "expected `&&`, `||` or `)`, found `}`"),
            (
                "{ $.a 1 }",
                7,
                "expected an operator (`=`, `!=`, `<`, `<=`, `>`, `>=`) or `IS NULL`",
            ),
            ("{ $.a > \"x\" }", 9, "`>` compares numbers, found \"x\""),
            (
                "{ $.a IS MAYBE }",
                10,
                "expected `NULL`, `TRUE` or `FALSE` after `IS`, found `MAYBE`",
            ),
            ("{ $.a IS NOT NULL }", 10, "`IS NOT` is not supported"),
            ("{ $.a = \"x }", 9, "a string is not closed"),
            ("{ $. = 1 }", 5, "expected a property name after `.`"),
            (
                "{ $.a[x] = 1 }",
                7,
                "expected an array index, `*` or a quoted name after `[`",
            ),
            ("{ $.a[*].b[*] = 1 }", 3, "a selector may hold one wildcard"),
            ("{ $.a = %a(b)% }", 11, "parentheses are not supported"),
            (
                "{ $.a = %x% || $.b = %y% || $.c = %z% }",
                35,
                "2 regular expressions at most",
            ),
            ("{ $.a = 1 } x", 13, "nothing may follow the closing `}`"),
            ("{ $.a = 1 & $.b = 2 }", 11, "found a lone `&`"),
            (
                "{ && }",
                3,
                "expected a selector such as `$.eventName`, or `(`, found `&&`",
            ),
        ];
        for (pattern, column, message) in cases {
            let e = Pattern::parse(pattern).expect_err(pattern);
            assert_eq!(e.column, column, "{pattern}: {e}");
            assert!(e.message.contains(message), "{pattern}: {e}");
        }
        let e = Pattern::parse("{ $.a == 1 }").unwrap_err();
        assert_eq!(
            e.pointed("{ $.a == 1 }"),
            "{ $.a == 1 }\n      ^ found `==`: the operator is a single `=`"
        );
        let long = format!("{{ $.a = \"{}\" }}", "x".repeat(MAX_LEN));
        assert!(Pattern::parse(&long).unwrap_err().message.contains("1024"));
        let deep = format!("{{ {}$.a = 1{} }}", "(".repeat(100), ")".repeat(100));
        assert!(Pattern::parse(&deep).unwrap_err().message.contains("nest"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// Any text: a pattern or an error, never a panic.
        #[test]
        fn any_text_parses_or_fails_cleanly(text in "\\PC{0,80}") {
            let _ = Pattern::parse(&text).map(|p| p.matches(&aws_sample()));
        }

        /// Text made of the grammar's own pieces, which reaches deeper into the parser.
        #[test]
        fn grammar_soup_parses_or_fails_cleanly(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "{", "}", "(", ")", "&&", "||", "=", "!=", "<", "<=", ">", ">=", "$.a", "$.b[0]",
                "$.c[*]", "$.*", "$.['x.y']", "\"s\"", "\"*s\"", "s*", "*", "1", "-1e3", "%a.b%",
                "%(%", "IS", "NULL", "TRUE", "FALSE", "NOT", "EXISTS", " ", "$", "[", "]", "'",
            ]), 0..40)
        ) {
            let text: String = pieces.concat();
            let _ = Pattern::parse(&text).map(|p| p.matches(&aws_sample()));
        }
    }
}
