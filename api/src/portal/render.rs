//! The portal's templates and assets, embedded in the binary: a minijinja environment
//! (HTML auto-escaped) with `t(key)` for words in the page's language, the `when` filter
//! for times in the reader's time zone and `left` for the time left to a deadline; and the
//! stylesheet and script under content-hashed names (cached for a year, a new name with
//! every change).

use super::i18n;
use chrono::{DateTime, Utc};
use leadroute_domain::partner_user::Language;
use minijinja::{Environment, State, Value};
use std::sync::OnceLock;

/// The templates: `(name, source)`.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("sign_in.html", include_str!("templates/sign_in.html")),
    (
        "set_password.html",
        include_str!("templates/set_password.html"),
    ),
    ("message.html", include_str!("templates/message.html")),
    (
        "forgot_form.html",
        include_str!("templates/forgot_form.html"),
    ),
    ("forgot.html", include_str!("templates/forgot.html")),
    ("inbox.html", include_str!("templates/inbox.html")),
    (
        "inbox_items.html",
        include_str!("templates/inbox_items.html"),
    ),
    ("lead.html", include_str!("templates/lead.html")),
    ("settings.html", include_str!("templates/settings.html")),
];

/// An embedded asset.
pub struct Asset {
    /// Its address, with the content hash (`/assets/portal.3f2a9c1b0d.css`).
    pub path: String,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The bytes.
    pub body: &'static [u8],
}

const CSS: &[u8] = include_bytes!("assets/portal.css");
const JS: &[u8] = include_bytes!("assets/portal.js");

/// The stylesheet and the script.
pub fn assets() -> &'static [Asset; 2] {
    static ASSETS: OnceLock<[Asset; 2]> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let named = |stem: &str, ext: &str, body: &'static [u8], content_type| {
            let digest = ring::digest::digest(&ring::digest::SHA256, body);
            let hash: String = digest.as_ref()[..5]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            Asset {
                path: format!("/assets/{stem}.{hash}.{ext}"),
                content_type,
                body,
            }
        };
        [
            named("portal", "css", CSS, "text/css; charset=utf-8"),
            named("portal", "js", JS, "text/javascript; charset=utf-8"),
        ]
    })
}

/// The environment with every template loaded.
pub fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("the portal template {name} parses: {e}"));
        }
        env.add_function("t", |state: &State, key: &str| -> String {
            i18n::text(language_of(state), key).to_string()
        });
        env.add_filter("when", |state: &State, at: Value| -> String {
            at.as_str()
                .and_then(|at| at.parse::<DateTime<Utc>>().ok())
                .map_or_else(String::new, |at| when(at, &zone_of(state)))
        });
        env.add_filter("left", |state: &State, seconds: Value| -> String {
            let seconds = f64::try_from(seconds).unwrap_or(0.0);
            left(language_of(state), seconds)
        });
        let [css, js] = assets();
        env.add_global("css", css.path.clone());
        env.add_global("js", js.path.clone());
        env
    })
}

fn language_of(state: &State) -> Language {
    state
        .lookup("lang")
        .and_then(|lang| lang.as_str().and_then(Language::of_tag))
        .unwrap_or_default()
}

fn zone_of(state: &State) -> chrono_tz::Tz {
    state
        .lookup("tz")
        .and_then(|tz| tz.as_str().and_then(|tz| tz.parse().ok()))
        .unwrap_or(chrono_tz::UTC)
}

/// A time as the reader reads it: date, hour and minute in their zone, with its
/// abbreviation (`2026-12-08 14:05 CET`).
pub fn when(at: DateTime<Utc>, zone: &chrono_tz::Tz) -> String {
    at.with_timezone(zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// The time left, in the largest two units (`1 d 3 h left`, `quedan 25 min`), or
/// `overdue`.
pub fn left(language: Language, seconds: f64) -> String {
    if seconds <= 0.0 {
        return i18n::text(language, "left.overdue").to_string();
    }
    let minutes = (seconds / 60.0).ceil() as i64;
    let (days, hours, minutes) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    let time = match (days, hours) {
        (0, 0) => format!("{minutes} min"),
        (0, h) => format!("{h} h {minutes} min"),
        (d, h) => format!("{d} d {h} h"),
    };
    i18n::text(language, "left.left").replace("{time}", &time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_reads_in_both_languages() {
        assert_eq!(left(Language::En, 30.0), "1 min left");
        assert_eq!(left(Language::En, 3.0 * 3600.0 + 60.0), "3 h 1 min left");
        assert_eq!(left(Language::Es, 26.0 * 3600.0), "quedan 1 d 2 h");
        assert_eq!(left(Language::Es, -5.0), "vencido");
    }

    #[test]
    fn a_time_reads_in_the_readers_zone() {
        let at: DateTime<Utc> = "2026-12-08T13:05:00Z".parse().unwrap();
        assert_eq!(when(at, &chrono_tz::Europe::Madrid), "2026-12-08 14:05 CET");
        assert_eq!(when(at, &chrono_tz::UTC), "2026-12-08 13:05 UTC");
    }

    #[test]
    fn asset_names_carry_their_content_hash() {
        let [css, js] = assets();
        assert!(css.path.starts_with("/assets/portal.") && css.path.ends_with(".css"));
        assert!(js.path.ends_with(".js"));
        assert_ne!(css.path, "/assets/portal.css");
    }

    #[test]
    fn every_template_parses() {
        let env = environment();
        for (name, _) in TEMPLATES {
            assert!(env.get_template(name).is_ok(), "{name}");
        }
    }
}
