//! Notification templates (minijinja): the built-in defaults (version 0), the variables
//! each kind may use, validation when a template is saved (it must parse and name only
//! known variables; the error gives line and reason), and rendering with strict
//! undefined values.
//!
//! Variables of the access email: `org.name`, `user.name`, `user.email`, `account.name`,
//! `link` (the one-time set-password link), `expires_at`.
//! Variables of the assignment email: `org.name`, `recipient.name`, `recipient.email`,
//! `lead.id`, `lead.fields` (the org's partner-visible fields, a map), `inbox_link`.
//! Variables of the reminder email: those of the assignment email and `deadline` (RFC 3339).
//! Variables of the password-reset email: those of the access email.

use leadroute_domain::templates::{Template, TemplateKind};
use minijinja::{Environment, UndefinedBehavior, Value};
use std::collections::BTreeSet;

/// The built-in template of `kind` (version 0), used until the org saves its own.
pub fn default_template(kind: TemplateKind) -> Template {
    match kind {
        TemplateKind::Access => Template {
            subject: "Your partner access to {{ org.name }}".into(),
            text: "Hello {{ user.name }},\n\n{{ org.name }} has given you access to its partner \
                   leads. Set your password with this link; it works once, until {{ expires_at }}:\n\n\
                   {{ link }}\n"
                .into(),
            html: Some(
                "<p>Hello {{ user.name }},</p><p>{{ org.name }} has given you access to its \
                 partner leads. <a href=\"{{ link }}\">Set your password</a> (the link works \
                 once, until {{ expires_at }}).</p>"
                    .into(),
            ),
        },
        TemplateKind::PasswordReset => Template {
            subject: "Set a new password for {{ org.name }}".into(),
            text: "Hello {{ user.name }},\n\nSomeone (we hope you) asked to set a new password \
                   for your partner access to {{ org.name }}. Set it with this link; it works \
                   once, until {{ expires_at }}:\n\n{{ link }}\n\nIf you did not ask, ignore \
                   this email: your password stays as it is.\n"
                .into(),
            html: None,
        },
        TemplateKind::Assignment => Template {
            subject: "New lead from {{ org.name }}{% if lead.fields.company %}: {{ lead.fields.company }}{% endif %}"
                .into(),
            text: "Hello {{ recipient.name }},\n\n{{ org.name }} gave you a lead.\n\n\
                   {% for name, value in lead.fields | items %}{{ name }}: {{ value }}\n{% endfor %}\n\
                   Your inbox: {{ inbox_link }}\n"
                .into(),
            html: None,
        },
        TemplateKind::Reminder => Template {
            subject: "Reminder: a lead from {{ org.name }} waits for you{% if lead.fields.company %}: {{ lead.fields.company }}{% endif %}"
                .into(),
            text: "Hello {{ recipient.name }},\n\n{{ org.name }} offered you a lead that you have \
                   not accepted yet. Accept or decline it before {{ deadline }}, or it goes to \
                   someone else.\n\n\
                   {% for name, value in lead.fields | items %}{{ name }}: {{ value }}\n{% endfor %}\n\
                   Your inbox: {{ inbox_link }}\n"
                .into(),
            html: None,
        },
    }
}

/// The variables (and their fields) a template of `kind` may use.
fn known(kind: TemplateKind) -> &'static [(&'static str, &'static [&'static str])] {
    match kind {
        TemplateKind::Access | TemplateKind::PasswordReset => &[
            ("org", &["name"]),
            ("user", &["name", "email"]),
            ("account", &["name"]),
            ("link", &[]),
            ("expires_at", &[]),
        ],
        TemplateKind::Assignment => &[
            ("org", &["name"]),
            ("recipient", &["name", "email"]),
            ("lead", &["id", "fields"]),
            ("inbox_link", &[]),
        ],
        TemplateKind::Reminder => &[
            ("org", &["name"]),
            ("recipient", &["name", "email"]),
            ("lead", &["id", "fields"]),
            ("inbox_link", &[]),
            ("deadline", &[]),
        ],
    }
}

/// Why `template` cannot be saved as `kind`: the part, line and reason. It must parse,
/// name only known variables, render the sample data (unknown filters, includes and
/// runaway loops fail here), keep the set-password link out of the subject and, for the
/// access email, carry it in the text.
pub fn problem(kind: TemplateKind, template: &Template) -> Option<String> {
    let parts = [
        ("subject", Some(&template.subject)),
        ("text", Some(&template.text)),
        ("html", template.html.as_ref()),
    ];
    let found = parts.into_iter().find_map(|(part, source)| {
        let source = source?;
        let env = environment();
        let parsed = match env.template_from_named_str(name_of(part), source) {
            Ok(parsed) => parsed,
            Err(e) => {
                return Some(format!(
                    "{part}, line {}: {}",
                    e.line().unwrap_or(1),
                    e.detail().unwrap_or("does not parse")
                ))
            }
        };
        let names: BTreeSet<String> = parsed.undeclared_variables(true).into_iter().collect();
        if part == "subject" && names.iter().any(|n| n == "link") {
            return Some("subject: the set-password link may not be in the subject".into());
        }
        if let Some(name) = names.iter().find_map(|name| unknown(kind, name)) {
            return Some(format!(
                "{part}, line {}: unknown variable `{name}`",
                line_of(source, &name)
            ));
        }
        parsed.render(sample(kind)).err().map(|e| {
            format!(
                "{part}, line {}: {}",
                e.line().unwrap_or(1),
                e.detail().unwrap_or("does not render")
            )
        })
    });
    found.or_else(|| {
        let needs_link = kind.carries_link() && !template.text.contains("link");
        needs_link.then(|| "text: the access email must carry the set-password `{{ link }}`".into())
    })
}

/// The line of the first use of `name` (a dotted variable) in `source`.
fn line_of(source: &str, name: &str) -> usize {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    source
        .lines()
        .position(|line| {
            line.match_indices(name).any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let after = line[at + name.len()..].chars().next();
                !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
            })
        })
        .map_or(1, |i| i + 1)
}

/// Template names: the HTML part is named `.html`, which turns on HTML escaping.
fn name_of(part: &str) -> &'static str {
    match part {
        "html" => "body.html",
        "subject" => "subject.txt",
        _ => "body.txt",
    }
}

/// `name` (dotted, as minijinja reports it) if `kind` does not know it.
fn unknown(kind: TemplateKind, name: &str) -> Option<String> {
    let mut parts = name.split('.');
    let root = parts.next().unwrap_or_default();
    if BUILTINS.contains(&root) {
        return None;
    }
    let Some((_, fields)) = known(kind).iter().find(|(r, _)| *r == root) else {
        return Some(name.to_string());
    };
    match parts.next() {
        None => None,
        // Lead fields are whatever the org's leads carry.
        Some(_) if root == "lead" && name.starts_with("lead.fields") => None,
        Some(field) if fields.contains(&field) => None,
        Some(_) => Some(name.to_string()),
    }
}

/// Global functions of minijinja that templates may call.
const BUILTINS: [&str; 6] = ["range", "dict", "namespace", "cycler", "joiner", "lipsum"];
/// Most instructions one render may run: a few thousand do for an email; a runaway loop
/// stops here instead of stalling the process.
const FUEL: u64 = 200_000;
/// Largest rendered part.
const MAX_OUTPUT: usize = 256 * 1024;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    env
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body, if the template has one.
    pub html: Option<String>,
}

/// Render `template` with `context` (absent optional values render empty).
pub fn render(template: &Template, context: &Value) -> Result<Rendered, minijinja::Error> {
    let env = environment();
    let one = |part: &str, source: &str| {
        let rendered = env
            .template_from_named_str(name_of(part), source)?
            .render(context)?;
        if rendered.len() > MAX_OUTPUT {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("the {part} renders to more than {MAX_OUTPUT} bytes"),
            ));
        }
        Ok(rendered)
    };
    Ok(Rendered {
        subject: one("subject", &template.subject)?.replace(['\r', '\n'], " "),
        text: one("text", &template.text)?,
        html: template
            .html
            .as_deref()
            .map(|h| one("html", h))
            .transpose()?,
    })
}

/// Sample data of `kind`, for previews.
pub fn sample(kind: TemplateKind) -> Value {
    match kind {
        TemplateKind::Access | TemplateKind::PasswordReset => minijinja::context! {
            org => minijinja::context! { name => "Acme" },
            user => minijinja::context! { name => "Ada Lovelace", email => "ada@partner.example" },
            account => minijinja::context! { name => "Northwind Resellers" },
            link => "https://leadroute.example/set-password?token=lri_sample",
            expires_at => "2026-12-01T09:00:00Z",
        },
        // The reminder's sample is the assignment's with its deadline (which the
        // assignment email does not name).
        TemplateKind::Assignment | TemplateKind::Reminder => minijinja::context! {
            org => minijinja::context! { name => "Acme" },
            recipient => minijinja::context! { name => "Ada Lovelace", email => "ada@partner.example" },
            lead => minijinja::context! {
                id => "00000000-0000-0000-0000-000000000000",
                fields => minijinja::context! { company => "Globex", country => "DE" },
            },
            inbox_link => "https://leadroute.example/v1/partner-users/…/inbox",
            deadline => "2026-12-01T13:00:00Z",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(text: &str) -> Template {
        Template {
            subject: "s".into(),
            text: text.into(),
            html: None,
        }
    }

    #[test]
    fn the_defaults_are_valid_and_render_their_samples() {
        for kind in TemplateKind::ALL {
            let default = default_template(kind);
            assert_eq!(problem(kind, &default), None, "{kind:?}");
            let rendered = render(&default, &sample(kind)).unwrap();
            assert!(rendered.text.contains("Acme"), "{rendered:?}");
        }
        let assignment = render(
            &default_template(TemplateKind::Assignment),
            &sample(TemplateKind::Assignment),
        )
        .unwrap();
        assert!(assignment.subject.contains("Globex") && assignment.text.contains("country: DE"));
    }

    #[test]
    fn a_template_that_does_not_parse_is_refused_with_its_line() {
        let broken = template("Hello\n{{ user.name \nbye {{ link }}");
        let reason = problem(TemplateKind::Access, &broken).unwrap();
        assert!(
            reason.starts_with("text, line 3: unexpected identifier"),
            "{reason}"
        );
    }

    #[test]
    fn an_unknown_variable_is_refused_naming_it() {
        let reason = problem(
            TemplateKind::Access,
            &template("{{ link }} {{ users }}\n{{ usr.name }}"),
        )
        .unwrap();
        assert_eq!(reason, "text, line 1: unknown variable `users`");
        let reason = problem(
            TemplateKind::Access,
            &template("Hi {{ link }}\n{{ usr.name }}"),
        )
        .unwrap();
        assert_eq!(reason, "text, line 2: unknown variable `usr.name`");
        let reason = problem(
            TemplateKind::Access,
            &template("{{ link }}{{ user.phone }}"),
        )
        .unwrap();
        assert!(reason.contains("user.phone"));
        assert_eq!(
            problem(
                TemplateKind::Assignment,
                &template("{{ lead.fields.anything }}")
            ),
            None
        );
        assert!(
            problem(TemplateKind::Assignment, &template("{{ link }}")).is_some(),
            "access-only variable"
        );
    }

    #[test]
    fn builtins_are_known_variables() {
        let ranged = template("{% for i in range(3) %}{{ i }}{% endfor %}");
        assert_eq!(problem(TemplateKind::Assignment, &ranged), None);
    }

    #[test]
    fn templates_that_cannot_render_or_lose_the_link_are_refused() {
        let filter = problem(
            TemplateKind::Assignment,
            &template("{{ recipient.name | uper }}"),
        )
        .unwrap();
        assert!(filter.contains("text, line 1"), "{filter}");
        let include = problem(TemplateKind::Assignment, &template("{% include 'x' %}")).unwrap();
        assert!(include.starts_with("text"), "{include}");
        let runaway =
            "{% for a in range(10000) %}{% for b in range(10000) %}.{% endfor %}{% endfor %}";
        assert!(
            problem(TemplateKind::Assignment, &template(runaway)).is_some(),
            "fuel runs out"
        );
        let no_link = problem(TemplateKind::Access, &template("Hello {{ user.name }}")).unwrap();
        assert!(no_link.contains("{{ link }}"), "{no_link}");
        let mut subject = template("{{ link }}");
        subject.subject = "{{ link }}".into();
        assert!(problem(TemplateKind::Access, &subject)
            .unwrap()
            .starts_with("subject"));
    }

    #[test]
    fn the_html_part_escapes_lead_data() {
        let html = Template {
            subject: "s".into(),
            text: "t".into(),
            html: Some("<p>{{ lead.fields.company }}</p>".into()),
        };
        let company = minijinja::context! { company => "<a href=x>win</a>" };
        let context = minijinja::context! { lead => minijinja::context! { fields => company } };
        let rendered = render(&html, &context).unwrap();
        assert!(!rendered.html.unwrap().contains("<a href"), "escaped");
        assert_eq!(rendered.text, "t");
    }
}
