//! Sign-in under attack, against a real API and PostgreSQL: guessers are throttled before
//! any password is hashed (429 with `Retry-After`) while a partner signing in from another
//! address gets in; refused sign-ins all look alike; deactivating an account ends its
//! sessions for good, and a reactivated user must set a new password.

use futures::future::join_all;
use leadroute_tests::api::{TestApi, PASSWORD};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessers_get_429s_while_a_partner_from_another_address_signs_in() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (_, account) = api.managed_account(&org).await;
    let victim = api
        .activated_user(&org.admin, account, "victim@partner.example")
        .await;
    api.signed_in(org.id, victim, "victim@partner.example")
        .await;
    let partner = api
        .activated_user(&org.admin, account, "ada@partner.example")
        .await;
    api.signed_in(org.id, partner, "ada@partner.example").await;

    let guess = |client: usize| {
        let api = &api;
        async move {
            let mut statuses = Vec::new();
            for attempt in 0..15 {
                let email = match attempt % 3 {
                    0 => "victim@partner.example".to_string(),
                    _ => format!("nobody{client}-{attempt}@partner.example"),
                };
                let answer = api.sign_in(org.id, &email, "wrong password 123").await;
                if answer.status == StatusCode::TOO_MANY_REQUESTS {
                    let wait: u64 = answer.headers["retry-after"]
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    assert!((1..=300).contains(&wait), "Retry-After {wait}");
                    assert_eq!(answer.code(), "too_many_attempts");
                }
                statuses.push(answer.status);
            }
            statuses
        }
    };
    // Another address of the loopback range, as another client would have.
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let sign_in_elsewhere = |email: &'static str| {
        elsewhere
            .post(format!("{}/v1/auth/sign-in", api.base))
            .json(&json!({"org_id": org.id.0, "email": email, "password": PASSWORD}))
            .send()
    };
    let legitimate = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let started = Instant::now();
        let answer = sign_in_elsewhere("ada@partner.example").await.unwrap();
        (answer.status(), started.elapsed())
    };
    let (guesses, (status, took)) = tokio::join!(join_all((0..8).map(guess)), legitimate);
    eprintln!("legitimate sign-in among 8 guessing clients took {took:?}");
    assert_eq!(status, StatusCode::OK, "the partner signed in");
    let all: Vec<StatusCode> = guesses.into_iter().flatten().collect();
    assert!(
        all.iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS),
        "{all:?}"
    );
    let hashed = all
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    // One address may fail 20 times a minute (a few more when attempts race past the
    // check together); everything after that is throttled before hashing.
    assert!((20..=28).contains(&hashed), "{hashed} hashed: {all:?}");
    // The guessed account is held too, even for the right password from elsewhere.
    let held = sign_in_elsewhere("victim@partner.example").await.unwrap();
    assert_eq!(held.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn deactivation_ends_sessions_for_good_and_reactivation_needs_a_new_password() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (_, account) = api.managed_account(&org).await;
    let user = api
        .activated_user(&org.admin, account, "pat@partner.example")
        .await;
    let session = api.signed_in(org.id, user, "pat@partner.example").await;
    assert_eq!(api.me(&session).await.status, 200);

    let deactivate = format!("/v1/partner-accounts/{account}/deactivate");
    api.post(&deactivate, &org.admin, json!({})).await.ok();
    assert_eq!(api.me(&session).await.status, 401);
    let refused = api.sign_in(org.id, "pat@partner.example", PASSWORD).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::UNAUTHORIZED, "invalid_credentials"),
        "signing in to an inactive account is refused like a wrong password"
    );
    let activate = format!("/v1/partner-accounts/{account}/activate");
    api.post(&activate, &org.admin, json!({})).await.ok();
    assert_eq!(
        api.me(&session).await.status,
        401,
        "reactivating the account revives no session"
    );

    let user_path = format!("/v1/partner-users/{user}");
    api.post(&format!("{user_path}/deactivate"), &org.admin, json!({}))
        .await
        .ok();
    let wrong = api
        .sign_in(org.id, "pat@partner.example", "not it at all")
        .await;
    let right = api.sign_in(org.id, "pat@partner.example", PASSWORD).await;
    assert_eq!(
        (right.status, right.code()),
        (wrong.status, wrong.code()),
        "a deactivated user's right password answers like a wrong one"
    );
    api.post(&format!("{user_path}/activate"), &org.admin, json!({}))
        .await
        .ok();
    let old = api.sign_in(org.id, "pat@partner.example", PASSWORD).await;
    assert_eq!(old.status, 401, "the old password no longer works");
    api.signed_in(org.id, user, "pat@partner.example").await;
}
