//! The portal's words in English and Spanish, and the choice of language: the signed-in
//! user's setting, else the browser's `Accept-Language`, else English. Every key has both
//! languages (a unit test checks the templates name only known keys).

use axum::http::HeaderMap;
use leadroute_domain::partner_user::Language;

/// `(key, English, Spanish)`.
const TEXTS: &[(&str, &str, &str)] = &[
    ("skip", "Skip to content", "Saltar al contenido"),
    ("portal", "partner portal", "portal de partners"),
    ("nav.label", "Main", "Principal"),
    ("nav.inbox", "Inbox", "Bandeja"),
    ("nav.settings", "Availability and settings", "Disponibilidad y ajustes"),
    ("sign_out", "Sign out", "Cerrar sesión"),
    ("sign_in.title", "Sign in", "Iniciar sesión"),
    ("sign_in.button", "Sign in", "Entrar"),
    ("sign_in.forgot", "Forgot your password?", "¿Olvidaste tu contraseña?"),
    ("field.email", "Email", "Correo electrónico"),
    ("field.password", "Password", "Contraseña"),
    ("field.new_password", "New password", "Contraseña nueva"),
    ("field.confirm_password", "Repeat the new password", "Repite la contraseña nueva"),
    ("set_password.title", "Set your password", "Elige tu contraseña"),
    (
        "set_password.intro",
        "Choose the password you will sign in with. This link works once.",
        "Elige la contraseña con la que entrarás. Este enlace funciona una sola vez.",
    ),
    ("set_password.hint", "At least 12 characters.", "Al menos 12 caracteres."),
    ("set_password.button", "Set password", "Guardar contraseña"),
    ("password_set.title", "Your password is set", "Tu contraseña está guardada"),
    (
        "password_set.message",
        "You can sign in now with your email and the new password.",
        "Ya puedes entrar con tu correo y la contraseña nueva.",
    ),
    ("link.new_title", "Send me a new link", "Envíame un enlace nuevo"),
    ("link.used.title", "This link was used already", "Este enlace ya se usó"),
    (
        "link.used.message",
        "Each link sets a password once. Sign in with your password, or ask for a new link below.",
        "Cada enlace sirve una sola vez. Entra con tu contraseña o pide un enlace nuevo abajo.",
    ),
    ("link.expired.title", "This link has expired", "Este enlace ha caducado"),
    (
        "link.expired.message",
        "Links work for a limited time. Ask for a new one below and use it soon.",
        "Los enlaces duran un tiempo limitado. Pide uno nuevo abajo y úsalo pronto.",
    ),
    ("link.invalid.title", "This link does not work", "Este enlace no funciona"),
    (
        "link.invalid.message",
        "It may have been replaced by a newer link. Use the newest email, or ask for a new link below.",
        "Puede que lo haya sustituido uno más reciente. Usa el último correo o pide un enlace nuevo abajo.",
    ),
    ("forgot.title", "Forgot your password?", "¿Olvidaste tu contraseña?"),
    (
        "forgot.intro",
        "Enter your email. If it belongs to a partner user here, we send a link to set a new password.",
        "Escribe tu correo. Si pertenece a un usuario partner de aquí, te enviaremos un enlace para elegir una contraseña nueva.",
    ),
    ("forgot.button", "Send the link", "Enviar el enlace"),
    ("forgot.sent.title", "Check your email", "Revisa tu correo"),
    (
        "forgot.sent.message",
        "If the address belongs to a partner user here, a link to set a new password is on its way. It works once, for two hours.",
        "Si la dirección pertenece a un usuario partner de aquí, te llegará un enlace para elegir una contraseña nueva. Funciona una vez, durante dos horas.",
    ),
    ("back_to_sign_in", "Back to sign in", "Volver a iniciar sesión"),
    ("back_to_inbox", "Back to the inbox", "Volver a la bandeja"),
    ("inbox.title", "Inbox", "Bandeja de entrada"),
    ("inbox.filter", "Filter by state", "Filtrar por estado"),
    ("inbox.lead", "Lead", "Lead"),
    ("inbox.state", "State", "Estado"),
    ("inbox.deadline", "Accept by", "Aceptar antes de"),
    ("inbox.received", "Received", "Recibido"),
    ("inbox.older", "Older leads", "Leads anteriores"),
    ("inbox.empty", "No leads here right now.", "No hay leads aquí por ahora."),
    ("inbox.caption", "Your leads, newest first", "Tus leads, los más nuevos primero"),
    ("filter.all", "All", "Todos"),
    ("filter.offered", "To accept", "Por aceptar"),
    ("filter.accepted", "Accepted", "Aceptados"),
    ("filter.claimable", "In your queues", "En tus colas"),
    ("state.offered", "To accept", "Por aceptar"),
    ("state.accepted", "Accepted", "Aceptado"),
    ("state.claimable", "Claimable", "Disponible"),
    ("none", "none", "ninguno"),
    ("lead.deadline", "accept by", "acéptalo antes de"),
    ("lead.details", "Details", "Datos"),
    ("lead.no_fields", "No details to show.", "No hay datos que mostrar."),
    (
        "lead.more_after_accept",
        "You see the rest of the lead's details once you accept it.",
        "Verás el resto de los datos del lead cuando lo aceptes.",
    ),
    ("lead.accept", "Accept the lead", "Aceptar el lead"),
    ("lead.decline", "Decline the lead", "Rechazar el lead"),
    ("lead.reason", "Reason", "Motivo"),
    ("lead.note", "Note", "Nota"),
    (
        "lead.note_hint",
        "Optional; required with the reason Other.",
        "Opcional; obligatoria con el motivo Otro.",
    ),
    ("lead.decline_button", "Decline", "Rechazar"),
    ("lead.in_queue", "Waiting in the queue", "Esperando en la cola"),
    ("lead.claim", "Claim the lead", "Quedarme con el lead"),
    ("lead.history", "History", "Historial"),
    ("settings.title", "Availability and settings", "Disponibilidad y ajustes"),
    ("settings.availability", "Availability", "Disponibilidad"),
    ("settings.pause", "Pause new leads", "Pausar leads nuevos"),
    ("settings.resume", "Receive leads again", "Volver a recibir leads"),
    ("settings.back_on", "Back on (optional)", "Vuelvo el (opcional)"),
    (
        "settings.back_on_hint",
        "Out of office: leads resume on this date. Leave it empty to pause until you resume.",
        "Fuera de la oficina: los leads vuelven en esta fecha. Déjalo vacío para pausar hasta que vuelvas.",
    ),
    ("settings.preferences", "Language and time zone", "Idioma y zona horaria"),
    ("settings.language", "Language", "Idioma"),
    ("settings.browser_language", "As my browser", "Como mi navegador"),
    ("settings.time_zone", "Time zone", "Zona horaria"),
    ("settings.save", "Save", "Guardar"),
    (
        "availability.available",
        "You receive new leads.",
        "Recibes leads nuevos.",
    ),
    (
        "availability.paused",
        "New leads are paused until you resume.",
        "Los leads nuevos están en pausa hasta que vuelvas.",
    ),
    (
        "availability.paused_until",
        "New leads are paused until {date}.",
        "Los leads nuevos están en pausa hasta el {date}.",
    ),
    ("notice.accepted", "You accepted the lead.", "Has aceptado el lead."),
    (
        "notice.declined",
        "You declined the lead; it goes to someone else.",
        "Has rechazado el lead; pasa a otra persona.",
    ),
    ("notice.claimed", "The lead is yours now.", "El lead ya es tuyo."),
    ("notice.paused", "New leads are paused.", "Los leads nuevos están en pausa."),
    ("notice.resumed", "You receive new leads again.", "Vuelves a recibir leads nuevos."),
    ("notice.saved", "Saved.", "Guardado."),
    ("notice.signed_out", "You are signed out.", "Has cerrado la sesión."),
    ("left.overdue", "overdue", "vencido"),
    ("left.left", "{time} left", "quedan {time}"),
    ("owner.you", "you", "tú"),
    ("owner.queue", "the queue {name}", "la cola {name}"),
    ("owner.a_queue", "a queue", "una cola"),
    ("owner.other_partner", "another partner", "otro partner"),
    ("owner.team", "the channel team", "el equipo de canal"),
    ("owner.nobody", "nobody", "nadie"),
    ("history.line", "{from} → {to} ({cause})", "{from} → {to} ({cause})"),
    ("cause.manual", "assigned by hand", "asignado a mano"),
    ("cause.enqueue", "put in a queue", "puesto en una cola"),
    ("cause.claim", "claimed", "reclamado"),
    ("cause.rule", "routing rules", "reglas de reparto"),
    ("cause.rerun", "routed again", "repartido de nuevo"),
    ("cause.bulk", "bulk reassignment", "reasignación masiva"),
    ("cause.import", "import", "importación"),
    ("cause.declined", "declined", "rechazado"),
    ("cause.lapsed", "not accepted in time", "no aceptado a tiempo"),
    ("reason.not_my_territory", "Not my territory", "No es mi territorio"),
    ("reason.no_capacity", "No capacity", "Sin capacidad"),
    ("reason.not_qualified", "Not qualified", "No cualificado"),
    ("reason.duplicate", "Duplicate", "Duplicado"),
    ("reason.other", "Other", "Otro"),
    (
        "error.invalid_credentials",
        "The email or password is wrong, or the access is no longer active.",
        "El correo o la contraseña no son correctos, o el acceso ya no está activo.",
    ),
    (
        "error.too_many_attempts",
        "Too many attempts. Wait a few minutes and try again.",
        "Demasiados intentos. Espera unos minutos y vuelve a probar.",
    ),
    (
        "error.password_mismatch",
        "The two passwords differ.",
        "Las dos contraseñas no coinciden.",
    ),
    (
        "error.password_too_short",
        "The password needs at least 12 characters.",
        "La contraseña necesita al menos 12 caracteres.",
    ),
    (
        "error.password_too_long",
        "The password is too long.",
        "La contraseña es demasiado larga.",
    ),
    (
        "error.email_in_use",
        "Another partner user here signs in with this email.",
        "Otro usuario partner de aquí entra con este correo.",
    ),
    (
        "error.csrf",
        "The form expired or your browser refused its cookie. Reload the page and try again.",
        "El formulario caducó o tu navegador rechazó su cookie. Recarga la página y vuelve a probar.",
    ),
    ("error.not_found.title", "Not found", "No encontrado"),
    (
        "error.not_found.message",
        "There is nothing here, or it is not yours to see.",
        "Aquí no hay nada, o no te corresponde verlo.",
    ),
    ("error.unavailable.title", "Try again shortly", "Vuelve a probar en un momento"),
    (
        "error.unavailable.message",
        "The service could not answer just now.",
        "El servicio no ha podido responder ahora mismo.",
    ),
    (
        "error.not_offered",
        "This lead is not offered to you any more.",
        "Este lead ya no te está ofrecido.",
    ),
    (
        "error.already_accepted",
        "You accepted this lead already.",
        "Ya aceptaste este lead.",
    ),
    (
        "error.already_claimed",
        "Someone else claimed this lead first.",
        "Otra persona reclamó este lead antes.",
    ),
    (
        "error.decline_note_required",
        "Add a note to decline with the reason Other.",
        "Añade una nota para rechazar con el motivo Otro.",
    ),
    (
        "error.unknown_decline_reason",
        "Choose one of the listed reasons.",
        "Elige uno de los motivos de la lista.",
    ),
    ("error.invalid_note", "The note is too long or holds control characters.", "La nota es demasiado larga o contiene caracteres de control."),
    ("error.already_paused", "New leads are paused already.", "Los leads nuevos ya están en pausa."),
    ("error.not_paused", "New leads are not paused.", "Los leads nuevos no están en pausa."),
    (
        "error.pause_ends_in_past",
        "The return date must lie in the future.",
        "La fecha de vuelta debe ser futura.",
    ),
    ("error.invalid_date", "That is not a date.", "Eso no es una fecha."),
    (
        "error.invalid_time_zone",
        "Choose a time zone from the list.",
        "Elige una zona horaria de la lista.",
    ),
    (
        "error.generic",
        "That did not work ({code}).",
        "No ha funcionado ({code}).",
    ),
];

/// The text of `key` in `language` (the key itself when unknown, so a gap shows).
pub fn text(language: Language, key: &str) -> &str {
    TEXTS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map_or(key, |(_, en, es)| match language {
            Language::En => en,
            Language::Es => es,
        })
}

/// Whether `key` has texts.
pub fn known(key: &str) -> bool {
    TEXTS.iter().any(|(k, _, _)| *k == key)
}

/// The language the browser asks for first among those spoken (`Accept-Language`, by
/// weight), if any.
pub fn browser_language(headers: &HeaderMap) -> Option<Language> {
    let header = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)?
        .to_str()
        .ok()?;
    let mut wanted: Vec<(f32, Language)> = header
        .split(',')
        .take(32)
        .enumerate()
        .filter_map(|(i, part)| {
            let mut pieces = part.split(';');
            let language = Language::of_tag(pieces.next()?.trim())?;
            let weight = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            // Earlier entries win ties.
            Some((weight - i as f32 * 1e-4, language))
        })
        .filter(|(weight, _)| *weight > 0.0)
        .collect();
    wanted.sort_by(|a, b| b.0.total_cmp(&a.0));
    wanted.first().map(|(_, language)| *language)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(axum::http::header::ACCEPT_LANGUAGE, value.parse().unwrap());
        headers
    }

    #[test]
    fn the_browser_language_goes_by_weight() {
        assert_eq!(
            browser_language(&accept("es-ES,es;q=0.9,en;q=0.8")),
            Some(Language::Es)
        );
        assert_eq!(
            browser_language(&accept("fr-FR, en;q=0.5, es;q=0.7")),
            Some(Language::Es)
        );
        assert_eq!(browser_language(&accept("de, fr")), None);
        assert_eq!(browser_language(&accept("es;q=0, en")), Some(Language::En));
        assert_eq!(browser_language(&HeaderMap::new()), None);
    }

    #[test]
    fn every_key_is_once_in_the_table_with_both_languages() {
        for (i, (key, en, es)) in TEXTS.iter().enumerate() {
            assert!(!en.is_empty() && !es.is_empty(), "{key}");
            assert!(
                TEXTS[i + 1..].iter().all(|(k, _, _)| k != key),
                "{key} twice"
            );
        }
    }

    #[test]
    fn every_key_the_templates_name_has_texts() {
        for (name, source) in super::super::render::TEMPLATES {
            for piece in source.split("t(").skip(1) {
                let quote = piece.chars().next().unwrap();
                if quote != '"' && quote != '\'' {
                    continue;
                }
                let key: String = piece[1..].chars().take_while(|c| *c != quote).collect();
                // `t("state." ~ item.state)` names a family of keys.
                if key.ends_with('.') {
                    continue;
                }
                assert!(known(&key), "{name} names the unknown key {key}");
            }
        }
    }
}
