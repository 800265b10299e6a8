//! Action templates: `"Заказ {order} доставлен"` compiled once at load into literal and
//! variable parts; `{{` and `}}` are literal braces.

/// A compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    Var(String),
}

/// Why a template does not compile, with the byte offset in the template text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

impl Template {
    pub fn literal(text: &str) -> Template {
        Template {
            parts: vec![Part::Literal(text.to_string())],
        }
    }

    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(i) = rest.find(['{', '}']) {
            literal.push_str(&rest[..i]);
            let tail = &rest[i..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                literal.push_str(&tail[..1]);
                rest = &tail[2..];
                offset += i + 2;
                continue;
            }
            if tail.starts_with('}') {
                return Err(TemplateError {
                    offset: offset + i,
                    message: "a `}` without a matching `{` (write `}}` for a literal brace)".into(),
                });
            }
            let Some(end) = tail[1..].find(['{', '}', '\n']) else {
                return Err(unclosed(offset + i));
            };
            if tail.as_bytes()[1 + end] != b'}' {
                return Err(unclosed(offset + i));
            }
            let name = tail[1..1 + end].trim();
            if name.is_empty() {
                return Err(TemplateError {
                    offset: offset + i,
                    message: "empty variable `{}` (write `{{}}` for literal braces)".into(),
                });
            }
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(Part::Var(name.to_string()));
            rest = &tail[end + 2..];
            offset += i + end + 2;
        }
        literal.push_str(rest);
        if !literal.is_empty() || parts.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    /// Every variable the template uses, in order.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// The template is exactly one variable, e.g. `"{task}"`.
    pub fn single_var(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Var(v)] => Some(v),
            _ => None,
        }
    }
}

fn unclosed(offset: usize) -> TemplateError {
    TemplateError {
        offset,
        message: "a `{` without a closing `}` (write `{{` for a literal brace)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Part {
        Part::Literal(s.into())
    }
    fn var(s: &str) -> Part {
        Part::Var(s.into())
    }

    #[test]
    fn parses_variables_and_literal_braces() {
        let t = Template::parse("Заказ {order} {{x}} #{task}").unwrap();
        assert_eq!(
            t.parts,
            vec![lit("Заказ "), var("order"), lit(" {x} #"), var("task")]
        );
        assert_eq!(Template::parse("").unwrap().parts, vec![lit("")]);
        assert_eq!(Template::parse("{ a }").unwrap().single_var(), Some("a"));
    }

    #[test]
    fn reports_unbalanced_braces_with_offsets() {
        assert_eq!(Template::parse("ab {x").unwrap_err().offset, 3);
        assert_eq!(Template::parse("ab } x").unwrap_err().offset, 3);
        assert_eq!(Template::parse("{}").unwrap_err().offset, 0);
        assert_eq!(Template::parse("{a\n}").unwrap_err().offset, 0);
    }
}
