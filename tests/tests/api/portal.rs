//! The partner portal over plain HTTP (the browser tests drive it in Chromium): cookies,
//! CSRF, security headers, scoping of pages to the signed-in partner, the forgot-password
//! answer that tells nothing, and hostile form input.

use leadroute_tests::api::{TestApi, TestOrg, PASSWORD};
use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

/// A browser-like client of one partner: its cookies, by hand (no redirects followed).
struct Visitor<'a> {
    api: &'a TestApi,
    portal: String,
    cookies: Vec<(String, String)>,
    client: reqwest::Client,
}

/// A page: status, headers, body.
struct Seen {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Seen {
    /// The value of the first hidden `_csrf` field.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"_csrf\" value=\"")
            .expect("a CSRF field")
            + 20;
        self.body[at..].chars().take_while(|c| *c != '"').collect()
    }
}

impl<'a> Visitor<'a> {
    async fn new(api: &'a TestApi, org: &TestOrg) -> Visitor<'a> {
        let slug = api.get("/v1/org", &org.admin).await.ok().body["slug"]
            .as_str()
            .unwrap()
            .to_string();
        Visitor {
            api,
            portal: format!("/p/{slug}"),
            cookies: Vec::new(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            if !value.is_empty() {
                self.cookies.push((name.to_string(), value.to_string()));
            }
        }
    }

    async fn get(&mut self, path: &str) -> Seen {
        let response = self
            .client
            .get(format!("{}{}{path}", self.api.base, self.portal))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.seen(response).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)], origin: Option<&str>) -> Seen {
        let mut request = self
            .client
            .post(format!("{}{}{path}", self.api.base, self.portal))
            .header("cookie", self.cookie_header())
            .form(form);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.unwrap();
        self.seen(response).await
    }

    async fn seen(&mut self, response: reqwest::Response) -> Seen {
        let status = response.status();
        let headers = response.headers().clone();
        self.keep_cookies(&headers);
        Seen {
            status,
            headers,
            body: response.text().await.unwrap(),
        }
    }

    /// Sign in through the form.
    async fn sign_in(&mut self, email: &str) -> Seen {
        let csrf = self.get("/sign-in").await.csrf();
        self.post(
            "/sign-in",
            &[("_csrf", &csrf), ("email", email), ("password", PASSWORD)],
            None,
        )
        .await
    }
}

async fn partner(api: &TestApi, org: &TestOrg, account: Uuid) -> (Uuid, String) {
    let (user, email, _) = partner_with_token(api, org, account).await;
    (user, email)
}

/// An assignable partner user, their email and an API session token.
async fn partner_with_token(api: &TestApi, org: &TestOrg, account: Uuid) -> (Uuid, String, String) {
    let email = format!("{}@partner.example", Uuid::new_v4().simple());
    let user = api.activated_user(&org.admin, account, &email).await;
    let token = api.signed_in(org.id, user, &email).await;
    (user, email, token)
}

#[tokio::test]
async fn pages_need_a_session_forms_need_their_token_and_answers_carry_strict_headers() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (_, account) = api.managed_account(&org).await;
    let (ada, email) = partner(&api, &org, account).await;
    let mut visitor = Visitor::new(&api, &org).await;

    // Signed out, the inbox sends to the sign-in page, and back afterwards.
    let inbox = visitor.get("/").await;
    assert_eq!(inbox.status, StatusCode::SEE_OTHER);
    let location = inbox.headers[LOCATION].to_str().unwrap().to_string();
    assert!(
        location.ends_with("/sign-in?next=%2Fp%2Facme%2F"),
        "{location}"
    );
    let page = visitor.get("/sign-in").await;
    assert_eq!(page.headers[CONTENT_TYPE], "text/html; charset=utf-8");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(page.headers["x-frame-options"], "DENY");

    // A sign-in without the form's token, or from another site, is refused.
    let csrf = page.csrf();
    let form = [("email", email.as_str()), ("password", PASSWORD)];
    let refused = visitor.post("/sign-in", &form, None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let with_token = [
        ("_csrf", csrf.as_str()),
        ("email", &email),
        ("password", PASSWORD),
    ];
    let refused = visitor
        .post("/sign-in", &with_token, Some("https://evil.example"))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // A wrong password says so on the page.
    let wrong = [
        ("_csrf", csrf.as_str()),
        ("email", &email),
        ("password", "not the password"),
    ];
    let page = visitor.post("/sign-in", &wrong, None).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.body.contains("The email or password is wrong"));

    // Signed in: the session cookie is HttpOnly and SameSite.
    let signed = visitor.sign_in(&email).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    let cookie = signed.headers[SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("lr_session=lrs_"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert_eq!(visitor.get("/").await.status, StatusCode::OK);

    // A lead offered to Ada: accepting without the session's token is refused.
    let (lead, _) = api.lead(&org.admin, json!({"company": "Globex"})).await;
    api.reassign(
        &org.admin,
        lead,
        json!({"to": {"kind": "partner_user", "id": ada}}),
    )
    .await
    .ok();
    let page = visitor.get(&format!("/leads/{lead}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let token = page.csrf();
    let forged = visitor
        .post(&format!("/leads/{lead}/accept"), &[("_csrf", "0000")], None)
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        api.get_lead(&org.admin, lead).await.ok().body["state"],
        "offered"
    );
    let accepted = visitor
        .post(&format!("/leads/{lead}/accept"), &[("_csrf", &token)], None)
        .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER);
    assert_eq!(
        api.get_lead(&org.admin, lead).await.ok().body["state"],
        "accepted"
    );

    // Deactivating Ada ends her browser session at once.
    api.post(
        &format!("/v1/partner-users/{ada}/deactivate"),
        &org.admin,
        json!({}),
    )
    .await
    .ok();
    assert_eq!(visitor.get("/").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_partner_sees_no_other_partners_lead_and_no_other_partners_name() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (_, account) = api.managed_account(&org).await;
    let (_, other_account) = api.managed_account(&org).await;
    let (ada, ada_email) = partner(&api, &org, account).await;
    let (bob, _) = partner(&api, &org, other_account).await;
    let (lead, _) = api.lead(&org.admin, json!({"company": "Globex"})).await;
    for to in [bob, ada] {
        api.reassign(
            &org.admin,
            lead,
            json!({"to": {"kind": "partner_user", "id": to}}),
        )
        .await
        .ok();
    }
    let (bobs, _) = api.lead(&org.admin, json!({"company": "Initech"})).await;
    api.reassign(
        &org.admin,
        bobs,
        json!({"to": {"kind": "partner_user", "id": bob}}),
    )
    .await
    .ok();
    let mut visitor = Visitor::new(&api, &org).await;
    visitor.sign_in(&ada_email).await;
    // Bob's lead is not found, exactly like a lead that does not exist.
    let page = visitor.get(&format!("/leads/{bobs}")).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let missing = visitor.get(&format!("/leads/{}", Uuid::new_v4())).await;
    assert_eq!(
        (missing.status, missing.body.len()),
        (page.status, page.body.len())
    );
    // Ada's lead came from Bob: its history names him only as another partner.
    let page = visitor.get(&format!("/leads/{lead}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("another partner → you"), "{}", page.body);
    assert!(!page.body.contains(&bob.to_string()));
    // Another org's portal does not know Ada's session.
    let other = api.prm_org().await;
    let mut elsewhere = Visitor::new(&api, &other).await;
    elsewhere.cookies = visitor.cookies.clone();
    assert_eq!(elsewhere.get("/").await.status, StatusCode::SEE_OTHER);
    assert_eq!(visitor.get("/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn forgot_password_answers_alike_and_the_new_link_works_once() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (_, account) = api.managed_account(&org).await;
    let (ada, email, old_session) = partner_with_token(&api, &org, account).await;
    // The directory knows Ada (forgot-password looks her up there).
    let listed = leadroute_tests::eventually(std::time::Duration::from_secs(10), || async {
        let users = api.get("/v1/partner-users", &org.admin).await.ok().body;
        users.to_string().contains(&ada.to_string()).then_some(())
    })
    .await;
    assert!(listed.is_some());
    let mut visitor = Visitor::new(&api, &org).await;
    let csrf = visitor.get("/forgot-password").await.csrf();
    let known = visitor
        .post(
            "/forgot-password",
            &[("_csrf", &csrf), ("email", &email)],
            None,
        )
        .await;
    let unknown = visitor
        .post(
            "/forgot-password",
            &[("_csrf", &csrf), ("email", "nobody@partner.example")],
            None,
        )
        .await;
    assert_eq!(
        (known.status, unknown.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(known.body, unknown.body);
    // The reset replaced Ada's used link with a new one (which the mailer would send): it
    // sets a password once and ends the sessions opened with the old one.
    let link = api.invitation_link(org.id, ada).await;
    let page = visitor.get(&format!("/set-password?token={link}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let token = page.csrf();
    let new_password = "a brand new password";
    let mismatch = visitor
        .post(
            "/set-password",
            &[
                ("_csrf", &token),
                ("token", &link),
                ("password", new_password),
                ("confirm", "different one!"),
            ],
            None,
        )
        .await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    let set = visitor
        .post(
            "/set-password",
            &[
                ("_csrf", &token),
                ("token", &link),
                ("password", new_password),
                ("confirm", new_password),
            ],
            None,
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let again = visitor.get(&format!("/set-password?token={link}")).await;
    assert_eq!(again.status, StatusCode::GONE);
    assert!(again.body.contains("This link was used already"));
    let signed = api.sign_in(org.id, &email, new_password).await;
    assert_eq!(signed.status, StatusCode::OK);
    assert_eq!(api.me(&old_session).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn hostile_form_input_gets_a_clear_page_and_changes_nothing() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let mut visitor = Visitor::new(&api, &org).await;
    let csrf = visitor.get("/sign-in").await.csrf();
    let nul = [
        ("_csrf", csrf.as_str()),
        ("email", "a\0@b.example"),
        ("password", "x"),
    ];
    assert_eq!(
        visitor.post("/sign-in", &nul, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let huge = "x".repeat(2 << 20);
    let big = [("_csrf", csrf.as_str()), ("email", huge.as_str())];
    let answer = visitor.post("/forgot-password", &big, None).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Not a form at all, or an unknown org, or a lead id that is no id.
    let garbage = visitor.post("/sign-in", &[], None).await;
    assert_eq!(garbage.status, StatusCode::FORBIDDEN);
    let unknown = visitor
        .client
        .get(format!("{}/p/no-such-org/sign-in", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(unknown.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let next = visitor.get("/sign-in?next=https://evil.example/").await;
    assert!(
        next.body
            .contains("name=\"next\" value=\"&#x2f;p&#x2f;acme&#x2f;\""),
        "{}",
        next.body
    );
}
