//! Parser for oslo.policy's check-string language.
//!
//! Rules are parsed once, when the policy is loaded, into a [`Check`] tree
//! that the evaluator walks on every request without allocating.
//!
//! The tokenizer follows `oslo_policy._parser._parse_tokenize`: the string is
//! split on whitespace, and leading `(` / trailing `)` are peeled off each
//! word, so `(role:admin)` is three tokens but a `)` inside `%(x)s` is not a
//! parenthesis. `and`, `or` and `not` are keywords in any letter case.
//! Precedence is `not` > `and` > `or`, which is what oslo's greedy
//! shift-reduce parser produces for every string it accepts.
//!
//! Where oslo logs "Failed to understand rule" and silently turns the rule
//! into "never", we return an error so that an operator's typo is reported
//! at load time instead of locking everyone out.

/// Deepest nesting of parentheses and `not` we accept; keeps both parsing
/// and evaluation well clear of the stack limit on hostile input.
const MAX_NESTING: usize = 64;

/// A parsed check string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Check {
    /// `@` or the empty string.
    True,
    /// `!`.
    False,
    /// `rule:NAME`; resolved to an index when the rule set is linked.
    Rule(RuleRef),
    /// `role:NAME`, compared case-insensitively with the credential's roles.
    Role(Template),
    /// `KIND:MATCH` for any other KIND: a credential attribute or a Python
    /// literal on the left, a (possibly substituted) string on the right.
    Generic {
        left: Left,
        right: Template,
    },
    Not(Box<Check>),
    And(Vec<Check>),
    Or(Vec<Check>),
}

/// A `rule:NAME` reference.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RuleRef {
    pub(crate) name: String,
    pub(crate) target: RuleTarget,
}

/// What a `rule:NAME` reference points at after linking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuleTarget {
    /// Not (yet) linked, or no rule of that name exists: evaluates false.
    Unknown,
    /// Index into the enforcer's rule table.
    Index(usize),
    /// The named rule is part of a `rule:` cycle: evaluates false.
    Cycle,
}

/// Left side of a generic check.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Left {
    /// A Python literal (`'member'`, `True`, `None`, `1`), kept as Python's
    /// `str()` of it, which is what oslo compares.
    Literal(String),
    /// A credential attribute.
    Cred(CredAttr),
}

/// Credential attributes a check can name. The names are those of
/// oslo.context's `to_policy_values()` plus Keystone's `token` (the caller's
/// rendered token); resolving them once at parse time keeps evaluation
/// free of string lookups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CredAttr {
    UserId,
    UserDomainId,
    ProjectId,
    ProjectDomainId,
    DomainId,
    SystemScope,
    /// `system`: oslo.policy copies `system_scope` here when it is set.
    System,
    IsAdmin,
    Roles,
    TokenUserId,
    TokenUserDomainId,
    TokenProjectId,
    TokenProjectDomainId,
    TokenDomainId,
    TokenSystemAll,
    TokenRolesName,
    /// Anything else: never present, so the check is false.
    Unknown(String),
}

impl CredAttr {
    fn from_path(path: &str) -> Self {
        match path {
            "user_id" => Self::UserId,
            "user_domain_id" => Self::UserDomainId,
            "project_id" => Self::ProjectId,
            "project_domain_id" => Self::ProjectDomainId,
            "domain_id" => Self::DomainId,
            "system_scope" => Self::SystemScope,
            "system" => Self::System,
            "is_admin" => Self::IsAdmin,
            "roles" => Self::Roles,
            "token.user.id" => Self::TokenUserId,
            "token.user.domain.id" => Self::TokenUserDomainId,
            "token.project.id" => Self::TokenProjectId,
            "token.project.domain.id" => Self::TokenProjectDomainId,
            "token.domain.id" => Self::TokenDomainId,
            "token.system.all" => Self::TokenSystemAll,
            "token.roles.name" => Self::TokenRolesName,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

/// The MATCH half of a check: literal text with `%(key)s` substitutions
/// taken from the target.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    pub(crate) pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Piece {
    Text(String),
    /// `%(path)s`: a dotted path into the target.
    Var(String),
}

impl Template {
    /// The template's text if it has no substitutions.
    pub(crate) fn as_literal(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [] => Some(""),
            [Piece::Text(t)] => Some(t),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Check(&'a str),
}

/// Parses a check string. The error is a human-readable reason.
pub(crate) fn parse(rule: &str) -> Result<Check, String> {
    if rule.is_empty() {
        // oslo: "Empty rule means always accept".
        return Ok(Check::True);
    }
    if rule.trim().is_empty() {
        // oslo fails to parse this and denies everyone; say so instead.
        return Err(
            "blank rule (use \"\" or \"@\" to allow everyone, \"!\" to allow no one)".to_owned(),
        );
    }
    let tokens = tokenize(rule)?;
    let mut parser = Parser {
        tokens: &tokens,
        pos: 0,
        depth: 0,
    };
    let check = parser.or_expr()?;
    match parser.tokens.get(parser.pos) {
        None => Ok(check),
        Some(Token::RParen) => Err("unbalanced ')'".to_owned()),
        Some(tok) => Err(format!("unexpected {}", describe(tok))),
    }
}

/// Parses oslo's legacy list-of-lists form: the outer list is OR'ed, each
/// inner list AND'ed; every item is a single check.
pub(crate) fn parse_list(rule: &[Vec<String>]) -> Result<Check, String> {
    if rule.is_empty() {
        return Ok(Check::True);
    }
    let mut any = Vec::new();
    for inner in rule.iter().filter(|inner| !inner.is_empty()) {
        let mut all = inner
            .iter()
            .map(|item| parse_atom(item))
            .collect::<Result<Vec<_>, _>>()?;
        any.push(if all.len() == 1 {
            all.remove(0)
        } else {
            Check::And(all)
        });
    }
    Ok(match any.len() {
        0 => Check::False,
        1 => any.remove(0),
        _ => Check::Or(any),
    })
}

fn tokenize(rule: &str) -> Result<Vec<Token<'_>>, String> {
    let mut tokens = Vec::new();
    for word in rule.split_whitespace() {
        let clean = word.trim_start_matches('(');
        tokens.extend(std::iter::repeat_n(Token::LParen, word.len() - clean.len()));
        if clean.is_empty() {
            continue;
        }
        let body = clean.trim_end_matches(')');
        let trailing = clean.len() - body.len();
        if body.eq_ignore_ascii_case("and") {
            tokens.push(Token::And);
        } else if body.eq_ignore_ascii_case("or") {
            tokens.push(Token::Or);
        } else if body.eq_ignore_ascii_case("not") {
            tokens.push(Token::Not);
        } else if !body.is_empty() {
            if is_quoted(clean) {
                return Err(format!(
                    "{clean} is a bare quoted string, not a check (expected KIND:MATCH)"
                ));
            }
            tokens.push(Token::Check(body));
        }
        tokens.extend(std::iter::repeat_n(Token::RParen, trailing));
    }
    Ok(tokens)
}

fn is_quoted(s: &str) -> bool {
    s.len() >= 2
        && ((s.starts_with('\'') && s.ends_with('\'')) || (s.starts_with('"') && s.ends_with('"')))
}

fn describe(tok: &Token<'_>) -> String {
    match tok {
        Token::LParen => "'('".to_owned(),
        Token::RParen => "')'".to_owned(),
        Token::And => "'and'".to_owned(),
        Token::Or => "'or'".to_owned(),
        Token::Not => "'not'".to_owned(),
        Token::Check(c) => format!("check {c:?} (missing 'and'/'or'?)"),
    }
}

struct Parser<'t, 'a> {
    tokens: &'t [Token<'a>],
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'_, 'a> {
    fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.pos).copied()
    }

    fn or_expr(&mut self) -> Result<Check, String> {
        let mut items = vec![self.and_expr()?];
        while self.peek() == Some(Token::Or) {
            self.pos += 1;
            items.push(self.and_expr()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Check::Or(items)
        })
    }

    fn and_expr(&mut self) -> Result<Check, String> {
        let mut items = vec![self.unary()?];
        while self.peek() == Some(Token::And) {
            self.pos += 1;
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Check::And(items)
        })
    }

    fn unary(&mut self) -> Result<Check, String> {
        let tok = self.peek().ok_or("unexpected end of rule")?;
        self.pos += 1;
        match tok {
            Token::Not => {
                self.enter()?;
                let inner = self.unary()?;
                self.depth -= 1;
                Ok(Check::Not(Box::new(inner)))
            }
            Token::LParen => {
                self.enter()?;
                let inner = self.or_expr()?;
                self.depth -= 1;
                if self.peek() != Some(Token::RParen) {
                    return Err("unbalanced '('".to_owned());
                }
                self.pos += 1;
                Ok(inner)
            }
            Token::Check(text) => parse_atom(text),
            other => Err(format!("unexpected {}", describe(&other))),
        }
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(format!("nested deeper than {MAX_NESTING} levels"));
        }
        Ok(())
    }
}

/// Parses one `KIND:MATCH` check (or `@` / `!`).
fn parse_atom(text: &str) -> Result<Check, String> {
    match text {
        "@" => return Ok(Check::True),
        "!" => return Ok(Check::False),
        _ => {}
    }
    let (kind, matched) = text
        .split_once(':')
        .ok_or_else(|| format!("cannot understand {text:?} (expected KIND:MATCH, '@' or '!')"))?;
    match kind {
        "rule" => {
            if matched.is_empty() {
                return Err("'rule:' needs a rule name".to_owned());
            }
            Ok(Check::Rule(RuleRef {
                name: matched.to_owned(),
                target: RuleTarget::Unknown,
            }))
        }
        "role" => Ok(Check::Role(parse_template(matched)?)),
        "http" | "https" => Err(format!(
            "{kind}: checks (remote policy servers) are not supported"
        )),
        "" => Err(format!("{text:?} has an empty KIND")),
        _ => Ok(Check::Generic {
            left: parse_left(kind)?,
            right: parse_template(matched)?,
        }),
    }
}

/// Interprets KIND the way oslo does: `ast.literal_eval(kind)` if that
/// succeeds, otherwise a dotted credential path.
fn parse_left(kind: &str) -> Result<Left, String> {
    if let Some(quote) = kind.chars().next().filter(|c| *c == '\'' || *c == '"') {
        let inner = kind
            .strip_prefix(quote)
            .and_then(|k| k.strip_suffix(quote))
            .filter(|inner| !inner.contains(quote) && !inner.contains('\\'))
            .ok_or_else(|| format!("unsupported quoted literal {kind}"))?;
        return Ok(Left::Literal(inner.to_owned()));
    }
    match kind {
        "None" | "True" | "False" => return Ok(Left::Literal(kind.to_owned())),
        _ => {}
    }
    let digits = kind.strip_prefix(['-', '+']).unwrap_or(kind);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        // Python's str(int): no sign for "+", no leading zeros.
        let value: i128 = kind
            .parse()
            .map_err(|_| format!("integer literal {kind} is out of range"))?;
        return Ok(Left::Literal(value.to_string()));
    }
    if kind.starts_with(|c: char| c.is_ascii_digit())
        || (kind.starts_with(['-', '+', '.']) && kind.parse::<f64>().is_ok())
    {
        // Python reads these as numbers (or rejects them); only plain
        // integers are worth supporting.
        return Err(format!(
            "unsupported literal {kind} (only integers, quoted strings, True, False and None)"
        ));
    }
    Ok(Left::Cred(CredAttr::from_path(kind)))
}

/// Splits MATCH into text and `%(key)s` substitutions (`%%` is a literal
/// `%`). Other `%` conversions would raise in Python; we refuse them.
fn parse_template(s: &str) -> Result<Template, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('%') {
        text.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(r) = after.strip_prefix('%') {
            text.push('%');
            rest = r;
        } else if let Some(r) = after.strip_prefix('(') {
            let close = r
                .find(')')
                .ok_or_else(|| format!("unterminated substitution in {s:?}"))?;
            let tail = r[close + 1..]
                .strip_prefix('s')
                .ok_or_else(|| format!("only %(key)s substitutions are supported, in {s:?}"))?;
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Var(r[..close].to_owned()));
            rest = tail;
        } else {
            return Err(format!("stray '%' in {s:?} (write %% for a literal '%')"));
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(Template { pieces })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str) -> Check {
        Check::Role(Template {
            pieces: vec![Piece::Text(name.to_owned())],
        })
    }

    #[test]
    fn empty_and_constants() {
        assert_eq!(parse(""), Ok(Check::True));
        assert!(parse("   ").is_err());
        assert_eq!(parse("@"), Ok(Check::True));
        assert_eq!(parse("!"), Ok(Check::False));
        assert_eq!(parse("(@)"), Ok(Check::True));
    }

    #[test]
    fn precedence_not_and_or() {
        // a or b and c  ==  a or (b and c)
        assert_eq!(
            parse("role:a or role:b and role:c"),
            Ok(Check::Or(vec![
                role("a"),
                Check::And(vec![role("b"), role("c")])
            ]))
        );
        // not a and b  ==  (not a) and b
        assert_eq!(
            parse("not role:a and role:b"),
            Ok(Check::And(vec![Check::Not(Box::new(role("a"))), role("b")]))
        );
        // a and b or c and d
        assert_eq!(
            parse("role:a AND role:b Or role:c and role:d"),
            Ok(Check::Or(vec![
                Check::And(vec![role("a"), role("b")]),
                Check::And(vec![role("c"), role("d")]),
            ]))
        );
    }

    #[test]
    fn parentheses_group() {
        assert_eq!(
            parse("(role:a or role:b) and role:c"),
            Ok(Check::And(vec![
                Check::Or(vec![role("a"), role("b")]),
                role("c")
            ]))
        );
        assert_eq!(
            parse("not (role:a or role:b)"),
            Ok(Check::Not(Box::new(Check::Or(vec![role("a"), role("b")]))))
        );
        assert_eq!(parse("((role:a))"), Ok(role("a")));
    }

    #[test]
    fn parenthesis_inside_substitution_is_not_a_token() {
        let parsed = parse("(user_id:%(target.user.id)s)");
        assert_eq!(
            parsed,
            Ok(Check::Generic {
                left: Left::Cred(CredAttr::UserId),
                right: Template {
                    pieces: vec![Piece::Var("target.user.id".to_owned())]
                },
            })
        );
    }

    #[test]
    fn literals_on_the_left() {
        let lit = |s: &str| match parse(s) {
            Ok(Check::Generic { left, .. }) => left,
            other => panic!("{other:?}"),
        };
        assert_eq!(lit("'member':%(x)s"), Left::Literal("member".to_owned()));
        assert_eq!(lit("\"member\":%(x)s"), Left::Literal("member".to_owned()));
        assert_eq!(lit("None:%(x)s"), Left::Literal("None".to_owned()));
        assert_eq!(lit("True:%(x)s"), Left::Literal("True".to_owned()));
        assert_eq!(lit("+007:%(x)s"), Left::Literal("7".to_owned()));
        assert_eq!(
            lit("token.domain.id:%(x)s"),
            Left::Cred(CredAttr::TokenDomainId)
        );
        assert_eq!(
            lit("token.project.name:x"),
            Left::Cred(CredAttr::Unknown("token.project.name".to_owned()))
        );
    }

    #[test]
    fn templates() {
        assert_eq!(
            parse_template("a%%b%(x.y)s-%(z)s"),
            Ok(Template {
                pieces: vec![
                    Piece::Text("a%b".to_owned()),
                    Piece::Var("x.y".to_owned()),
                    Piece::Text("-".to_owned()),
                    Piece::Var("z".to_owned()),
                ]
            })
        );
        assert!(parse_template("50%").is_err());
        assert!(parse_template("%(x)d").is_err());
        assert!(parse_template("%(x").is_err());
        // role:compute:admin keeps everything after the first ':'
        assert_eq!(parse("role:compute:admin"), Ok(role("compute:admin")));
    }

    #[test]
    fn errors() {
        for bad in [
            "role:a or",
            "and role:a",
            "(role:a",
            "role:a)",
            "role:a role:b",
            "not",
            "()",
            "'quoted'",
            "noseparator",
            "rule:",
            ":x",
            "http://example.com/check",
            "1.5:%(x)s",
            "0x10:%(x)s",
            "-2.5:%(x)s",
            "role:a or or role:b",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}@{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse(&deep).is_err());
        let nots = format!("{}@", "not ".repeat(10_000));
        assert!(parse(&nots).is_err());
        let ok = format!("{}@{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert_eq!(parse(&ok), Ok(Check::True));
    }

    #[test]
    fn list_form() {
        assert_eq!(parse_list(&[]), Ok(Check::True));
        assert_eq!(parse_list(&[vec![]]), Ok(Check::False));
        assert_eq!(
            parse_list(&[
                vec!["role:a".to_owned()],
                vec!["role:b".to_owned(), "role:c".to_owned()]
            ]),
            Ok(Check::Or(vec![
                role("a"),
                Check::And(vec![role("b"), role("c")])
            ]))
        );
    }
}
