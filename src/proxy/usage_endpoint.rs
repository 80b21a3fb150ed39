//! `GET /v1/keywrap/usage`: a client key holder asks what its own key may do and has spent.
//! Answered by the proxy itself (never forwarded), only to a valid client key, and only
//! about that key: nothing about other clients.

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::keys::KeyPolicy;
use super::Shared;

pub const PATH: &str = "/v1/keywrap/usage";

/// Budgets never refill: spend counts from the key's creation.
const BUDGET_PERIOD: &str = "lifetime";

/// The status and JSON body for `policy`'s usage.
pub async fn answer(shared: &Shared, method: &Method, policy: &KeyPolicy) -> (StatusCode, Value) {
    if method != Method::GET {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            json!({ "error": { "message": "GET only", "type": "keywrap_proxy" } }),
        );
    }
    let spent = match shared.limits.store() {
        Some(store) => match store.spent(&policy.name).await {
            Ok(spent) => spent,
            Err(_) => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({ "error": { "message": super::limits::UNAVAILABLE_MESSAGE, "type": "keywrap_proxy" } }),
                )
            }
        },
        None => shared.limits.admission().spent(&policy.name),
    };
    (StatusCode::OK, body(policy, spent))
}

fn body(policy: &KeyPolicy, spent: u64) -> Value {
    let limit = |n: u64| if n == 0 { Value::Null } else { json!(n) };
    let budgeted = policy.budget > 0;
    json!({
        "name": policy.name,
        "limits": {
            "requests_per_minute": limit(policy.rpm),
            "tokens_per_minute": limit(policy.tpm),
            "budget": limit(policy.budget),
            "concurrency": limit(policy.concurrency),
        },
        "spent": spent,
        "remaining": if budgeted { json!(policy.budget.saturating_sub(spent)) } else { Value::Null },
        "period": {
            "budget": if budgeted { json!(BUDGET_PERIOD) } else { Value::Null },
            "rate_window_seconds": 60,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_is_null_and_remaining_never_negative() {
        let policy = KeyPolicy {
            name: "alice".into(),
            rpm: 60,
            budget: 100,
            ..Default::default()
        };
        let b = body(&policy, 130);
        assert_eq!(b["limits"]["requests_per_minute"], 60);
        assert!(b["limits"]["tokens_per_minute"].is_null());
        assert_eq!(
            (b["spent"].as_u64(), b["remaining"].as_u64()),
            (Some(130), Some(0))
        );
        let unbudgeted = body(
            &KeyPolicy {
                name: "bob".into(),
                ..Default::default()
            },
            5,
        );
        assert!(unbudgeted["remaining"].is_null() && unbudgeted["period"]["budget"].is_null());
    }
}
