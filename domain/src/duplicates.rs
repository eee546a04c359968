//! Duplicate / channel-conflict keys: the normalized values by which a new lead is matched
//! against the open leads of its org (F30). A value is indexed under each kind it can be a
//! key of (an email address as `email` and, for its company domain, `domain`; a web address
//! or a bare host name as `domain`), per field, whatever the org's keys are; the org's keys
//! ([`DuplicateKey`]) choose which of them a new lead is looked up by. Free-mail domains are
//! never a company's domain. Pure.

use crate::fields::LeadFields;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kind of a duplicate key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// An email address, trimmed and lowercased.
    Email,
    /// A company's internet domain (from an email address or a web address), lowercased,
    /// without `www.`; free-mail domains are not keys.
    Domain,
}

impl KeyKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Email => "email",
            KeyKind::Domain => "domain",
        }
    }
}

/// One key an org matches new leads by: a kind read from a lead field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DuplicateKey {
    /// How the value is read.
    pub kind: KeyKind,
    /// The lead field it is read from.
    pub field: String,
}

/// The keys an org matches by until it sets its own: the same email, or the same company
/// domain from the email or the website.
pub fn default_keys() -> Vec<DuplicateKey> {
    [
        (KeyKind::Email, "email"),
        (KeyKind::Domain, "email"),
        (KeyKind::Domain, "website"),
    ]
    .map(|(kind, field)| DuplicateKey {
        kind,
        field: field.to_string(),
    })
    .to_vec()
}

/// Domains of free email services: an address there says nothing about a company.
pub const FREE_MAIL: [&str; 24] = [
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.co.uk",
    "yahoo.fr",
    "hotmail.com",
    "hotmail.co.uk",
    "hotmail.fr",
    "outlook.com",
    "live.com",
    "msn.com",
    "aol.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "proton.me",
    "protonmail.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.ru",
    "yandex.ru",
    "qq.com",
    "163.com",
];

/// Longest value read as a key (longer ones are no email or host name).
const MAX_KEY_CHARS: usize = 320;

/// The keys `value` can be, as `(kind, normalized value)`.
pub fn keys_of(value: &Value) -> Vec<(KeyKind, String)> {
    let Value::String(text) = value else {
        return vec![];
    };
    let text = text.trim().to_lowercase();
    if text.is_empty() || text.chars().count() > MAX_KEY_CHARS || text.contains(char::is_whitespace)
    {
        return vec![];
    }
    if let Some((local, host)) = text.rsplit_once('@') {
        if local.is_empty() || !is_host(host) {
            return vec![];
        }
        let mut keys = vec![(KeyKind::Email, text.clone())];
        keys.extend(company_domain(host).map(|d| (KeyKind::Domain, d)));
        return keys;
    }
    let host = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .unwrap_or(&text);
    let host = host.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    match is_host(host) {
        true => company_domain(host)
            .map(|d| vec![(KeyKind::Domain, d)])
            .unwrap_or_default(),
        false => vec![],
    }
}

/// `host` without `www.`, unless it is a free-mail domain.
fn company_domain(host: &str) -> Option<String> {
    let host = host.strip_prefix("www.").unwrap_or(host);
    (!FREE_MAIL.contains(&host) && is_host(host)).then(|| host.to_string())
}

/// A host name with at least two labels of letters, digits and hyphens.
fn is_host(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

/// What a lead with `fields` is looked up by under `keys`: `(kind, value)`. It matches an
/// open lead holding the same value of that kind in any field the keys name for that kind
/// (an email's company domain matches a website's).
pub fn lookups(keys: &[DuplicateKey], fields: &LeadFields) -> Vec<(KeyKind, String)> {
    let mut out = Vec::new();
    for key in keys {
        let Some(value) = fields.get(&key.field) else {
            continue;
        };
        for (kind, normalized) in keys_of(value) {
            if kind == key.kind {
                out.push((kind, normalized));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Why a list of keys cannot be taken, naming the entry.
pub fn problem(keys: &[DuplicateKey]) -> Option<String> {
    if keys.len() > 20 {
        return Some("duplicate_keys: at most 20 keys".into());
    }
    keys.iter().enumerate().find_map(|(i, key)| {
        crate::limits::line("field", &key.field, crate::limits::MAX_FIELD_NAME_CHARS)
            .err()
            .map(|fault| format!("duplicate_keys[{i}].{fault}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_email_is_a_key_and_so_is_its_company_domain_but_not_a_free_mail_one() {
        assert_eq!(
            keys_of(&json!("  Ada@Globex.COM ")),
            vec![
                (KeyKind::Email, "ada@globex.com".to_string()),
                (KeyKind::Domain, "globex.com".to_string())
            ]
        );
        assert_eq!(
            keys_of(&json!("someone@gmail.com")),
            vec![(KeyKind::Email, "someone@gmail.com".to_string())]
        );
    }

    #[test]
    fn a_web_address_or_host_is_a_domain_key() {
        for site in [
            "https://www.globex.com/about",
            "globex.com",
            "WWW.GLOBEX.COM:443",
        ] {
            assert_eq!(
                keys_of(&json!(site)),
                vec![(KeyKind::Domain, "globex.com".to_string())],
                "{site}"
            );
        }
        for not in [
            json!("Globex"),
            json!(42),
            json!("a b@c.com"),
            json!("@x.com"),
            json!("x@"),
            json!(""),
        ] {
            assert!(keys_of(&not).is_empty(), "{not}");
        }
        assert!(keys_of(&json!(format!("{}@x.com", "a".repeat(400)))).is_empty());
    }

    #[test]
    fn a_lead_is_looked_up_by_the_org_s_keys_only() {
        let fields: LeadFields = [
            ("email".to_string(), json!("ada@globex.com")),
            ("website".to_string(), json!("https://initech.com")),
        ]
        .into();
        let keys = vec![DuplicateKey {
            kind: KeyKind::Domain,
            field: "website".into(),
        }];
        assert_eq!(
            lookups(&keys, &fields),
            vec![(KeyKind::Domain, "initech.com".to_string())]
        );
        assert_eq!(lookups(&default_keys(), &fields).len(), 3);
        assert!(lookups(&[], &fields).is_empty());
    }
}
