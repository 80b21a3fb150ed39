//! Tests for the rules in rules/saas.toml.

#[allow(unused_imports)]
use super::*;

/// `value` assigned to a name in the ways config files and code write it. `upper` is the
/// SCREAMING_CASE name (`ZENDESK_API_TOKEN`), `camel` the camelCase one (`zendeskToken`).
fn assignments(upper: &str, camel: &str, value: &str) -> Vec<String> {
    let lower = upper.to_ascii_lowercase();
    vec![
        format!("{upper}={value}"),
        format!("export {upper}=\"{value}\""),
        format!("{lower}: {value}"),
        format!("{{\"{lower}\": \"{value}\"}}"),
        format!("var {camel} string = \"{value}\""),
        format!("{camel} := `{value}`"),
        format!("{lower} = '{value}'"),
        format!("const {camel} = \"{value}\";"),
        format!("${camel} .= \"{value}\";"),
        format!("{upper} ?= {value}"),
        format!("{upper} := {value}"),
        format!("{upper} ::= {value}"),
        format!("{upper} :::= {value}"),
        format!("System.setProperty(\"{upper}\", \"{value}\");"),
        format!("<{camel}>{value}</{camel}>"),
    ]
}

/// `rule` finds `value` in every assignment context, and reports it as the only finding.
#[track_caller]
fn found_in_assignments(rule: &str, upper: &str, camel: &str, value: &str) {
    for text in assignments(upper, camel, value) {
        let rules = rules_in(&text);
        assert_eq!(rules, [rule], "{text:?}");
    }
}

#[test]
fn shopify() {
    for (seed, kind) in [(1, "at"), (2, "ca"), (3, "pa")] {
        let token = format!("{}{}", p(&["shp", kind, "_"]), random(seed, 32, HEX));
        found(
            "shopify-access-token",
            &format!("SHOPIFY_ACCESS_TOKEN={token}"),
        );
        found(
            "shopify-access-token",
            &format!("headers = {{\"X-Shopify-Access-Token\": \"{token}\"}}"),
        );
    }
    let secret = format!("{}{}", p(&["shp", "ss_"]), random(4, 32, HEX));
    found(
        "shopify-shared-secret",
        &format!("SHOPIFY_API_SECRET='{secret}'"),
    );
    // Placeholders, a wrong length, another prefix.
    not_found(
        "shopify-access-token",
        &format!("{}{}", p(&["shp", "at_"]), "x".repeat(32)),
    );
    not_found(
        "shopify-access-token",
        &format!("{}{}", p(&["shp", "at_"]), "0".repeat(32)),
    );
    not_found(
        "shopify-access-token",
        &format!("{}{}", p(&["shp", "at_"]), random(5, 20, HEX)),
    );
    not_found(
        "shopify-shared-secret",
        &format!("{}{}", p(&["shp", "xx_"]), random(6, 32, HEX)),
    );
}

#[test]
fn linear() {
    let key = format!("{}{}", p(&["lin", "_api_"]), random(1, 40, ALNUM));
    found("linear-api-key", &format!("LINEAR_API_KEY={key}"));
    found(
        "linear-api-key",
        &format!("new LinearClient({{ apiKey: \"{key}\" }})"),
    );
    not_found(
        "linear-api-key",
        &format!("{}{}", p(&["lin", "_api_"]), "x".repeat(40)),
    );
    not_found(
        "linear-api-key",
        &format!("{}{}", p(&["lin", "_api_"]), random(2, 30, ALNUM)),
    );
    let secret = random(3, 32, HEX);
    found_in_assignments(
        "linear-client-secret",
        "LINEAR_CLIENT_SECRET",
        "linearClientSecret",
        &secret,
    );
    // "linear" without "secret" is the common word; a placeholder.
    not_found(
        "linear-client-secret",
        &format!("linear_layer_hash = \"{secret}\""),
    );
    not_found(
        "linear-client-secret",
        &format!("LINEAR_CLIENT_SECRET={}", "0".repeat(32)),
    );
}

#[test]
fn postman() {
    let key = format!(
        "{}{}-{}",
        p(&["PM", "AK-"]),
        random(1, 24, HEX),
        random(2, 34, HEX)
    );
    found("postman-api-key", &format!("POSTMAN_API_KEY={key}"));
    found("postman-api-key", &format!("-H \"X-Api-Key: {key}\""));
    not_found(
        "postman-api-key",
        &format!("{}{}-{}", p(&["PM", "AK-"]), "x".repeat(24), "x".repeat(34)),
    );
    not_found(
        "postman-api-key",
        &format!("{}{}", p(&["PM", "AK-"]), random(3, 58, HEX)),
    );
}

#[test]
fn notion() {
    let token = format!(
        "{}{}{}",
        p(&["nt", "n_"]),
        random(1, 11, DIGITS),
        random(2, 35, ALNUM)
    );
    found("notion-token", &format!("NOTION_TOKEN={token}"));
    found("notion-token", &format!("Authorization: Bearer {token}\n"));
    not_found(
        "notion-token",
        &format!("{}{}", p(&["nt", "n_"]), random(3, 11, DIGITS)),
    );
    not_found(
        "notion-token",
        "NOTION_TOKEN=ntn_your_internal_integration_token_here",
    );
    let legacy = format!("{}{}", p(&["sec", "ret_"]), random(4, 43, ALNUM));
    found_in_assignments(
        "notion-legacy-token",
        "NOTION_TOKEN",
        "notionToken",
        &legacy,
    );
    found(
        "notion-legacy-token",
        &format!("NOTION_API_KEY=\"{legacy}\""),
    );
    // Under another name, and a placeholder.
    not_found("notion-legacy-token", &format!("OTHER_TOKEN=\"{legacy}\""));
    not_found(
        "notion-legacy-token",
        &format!("NOTION_TOKEN={}{}", p(&["sec", "ret_"]), "x".repeat(43)),
    );
}

#[test]
fn hubspot() {
    for (seed, region) in [(1, "na1"), (2, "eu1")] {
        let token = format!("{}{}", p(&["pat-", region, "-"]), uuid(seed * 10));
        found(
            "hubspot-private-app-token",
            &format!("HUBSPOT_ACCESS_TOKEN={token}"),
        );
        found(
            "hubspot-private-app-token",
            &format!("Authorization: Bearer {token}"),
        );
    }
    not_found(
        "hubspot-private-app-token",
        &format!(
            "{}{}",
            p(&["pat-", "na1-"]),
            "00000000-0000-0000-0000-000000000000"
        ),
    );
    not_found(
        "hubspot-private-app-token",
        &format!("{}{}", p(&["pat-", "na1-"]), random(3, 32, HEX)),
    );
    let key = uuid(40);
    found_in_assignments("hubspot-api-key", "HUBSPOT_API_KEY", "hubspotApiKey", &key);
    found(
        "hubspot-api-key",
        &format!("https://api.hubapi.com/contacts/v1/lists?hapikey={key}&count=10"),
    );
    // HubSpot form and portal ids are UUIDs too.
    not_found("hubspot-api-key", &format!("hubspot_form_id: \"{key}\""));
    not_found("hubspot-api-key", &format!("API_KEY=\"{key}\""));
}

#[test]
fn mailgun() {
    let key = format!("{}{}", p(&["ke", "y-"]), random(1, 32, HEX));
    found("mailgun-api-key", &format!("MAILGUN_API_KEY={key}"));
    found(
        "mailgun-api-key",
        &format!("requests.post(url, auth=(\"api\", \"{key}\"))"),
    );
    not_found(
        "mailgun-api-key",
        &format!("{}{}", p(&["ke", "y-"]), "0".repeat(32)),
    );
    // A key- inside a longer name, and the wrong length.
    not_found(
        "mailgun-api-key",
        &format!("cache-{}{}", p(&["ke", "y-"]), random(2, 32, HEX)),
    );
    not_found(
        "mailgun-api-key",
        &format!("{}{}", p(&["ke", "y-"]), random(3, 40, HEX)),
    );
    let public = format!("{}{}", p(&["pub", "key-"]), random(4, 32, HEX));
    found(
        "mailgun-public-key",
        &format!("MAILGUN_PUBLIC_KEY='{public}'"),
    );
    not_found(
        "mailgun-public-key",
        &format!("{}{}", p(&["pub", "key-"]), "a".repeat(32)),
    );
    let signing = format!(
        "{}-{}-{}",
        random(5, 32, HEX),
        random(6, 8, HEX),
        random(7, 8, HEX)
    );
    found_in_assignments(
        "mailgun-signing-key",
        "MAILGUN_SIGNING_KEY",
        "mailgunSigningKey",
        &signing,
    );
    not_found("mailgun-signing-key", &format!("OTHER_KEY={signing}"));
    not_found(
        "mailgun-signing-key",
        &format!("MAILGUN_SIGNING_KEY={}-00000000-00000000", "0".repeat(32)),
    );
}

#[test]
fn mailchimp() {
    for (seed, dc) in [(1, "6"), (2, "21")] {
        let key = format!("{}{}{dc}", random(seed, 32, HEX), p(&["-u", "s"]));
        found("mailchimp-api-key", &format!("MAILCHIMP_API_KEY={key}"));
        found(
            "mailchimp-api-key",
            &format!("client.set_config({{\"api_key\": \"{key}\", \"server\": \"us{dc}\"}})"),
        );
    }
    not_found(
        "mailchimp-api-key",
        &format!("{}{}6", "0".repeat(32), p(&["-u", "s"])),
    );
    not_found(
        "mailchimp-api-key",
        &format!("{}{}6", random(3, 24, HEX), p(&["-u", "s"])),
    );
    not_found("mailchimp-api-key", "Content-Language: en-us");
}

#[test]
fn brevo() {
    for (seed, prefix) in [(1, "xkeysib-"), (2, "xsmtpsib-")] {
        let key = format!(
            "{}{}-{}",
            p(&[&prefix[..3], &prefix[3..]]),
            random(seed, 64, HEX),
            random(seed + 10, 16, ALNUM)
        );
        found("brevo-api-key", &format!("BREVO_API_KEY={key}"));
    }
    not_found(
        "brevo-api-key",
        &format!(
            "{}{}-{}",
            p(&["xke", "ysib-"]),
            "0".repeat(64),
            "x".repeat(16)
        ),
    );
    not_found(
        "brevo-api-key",
        &format!("{}{}", p(&["xke", "ysib-"]), random(3, 64, HEX)),
    );
}

#[test]
fn mapbox() {
    use base64::Engine;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{{\"u\":\"acme\",\"a\":\"{}\"}}",
        random(1, 25, LOWER_DIGITS)
    ));
    for kind in ["s", "t"] {
        let token = format!("{}{payload}.{}", p(&[kind, "k."]), random(2, 22, URLSAFE));
        found(
            "mapbox-secret-token",
            &format!("MAPBOX_ACCESS_TOKEN={token}"),
        );
    }
    // Public tokens are meant for browsers; a token without its signature part.
    not_found(
        "mapbox-secret-token",
        &format!(
            "mapboxgl.accessToken = '{}{payload}.{}';",
            p(&["p", "k."]),
            random(3, 22, URLSAFE)
        ),
    );
    not_found(
        "mapbox-secret-token",
        &format!("{}{payload}", p(&["s", "k."])),
    );
}

#[test]
fn readme_rubygems_typeform() {
    let readme = format!("{}{}", p(&["rd", "me_"]), random(1, 70, LOWER_DIGITS));
    found("readme-api-key", &format!("README_API_KEY={readme}"));
    not_found(
        "readme-api-key",
        &format!("{}{}", p(&["rd", "me_"]), "a".repeat(70)),
    );
    not_found(
        "readme-api-key",
        &format!("{}{}", p(&["rd", "me_"]), random(2, 40, LOWER_DIGITS)),
    );
    let gems = format!("{}{}", p(&["ruby", "gems_"]), random(3, 48, HEX));
    found(
        "rubygems-api-key",
        &format!("---\n:rubygems_api_key: {gems}\n"),
    );
    not_found(
        "rubygems-api-key",
        &format!("{}{}", p(&["ruby", "gems_"]), "0".repeat(48)),
    );
    not_found("rubygems-api-key", "require 'rubygems_plugin'");
    let typeform = format!(
        "{}{}_{}",
        p(&["tf", "p_"]),
        random(4, 44, ALNUM),
        random(5, 14, ALNUM)
    );
    found("typeform-token", &format!("TYPEFORM_TOKEN={typeform}"));
    not_found(
        "typeform-token",
        &format!("{}{}", p(&["tf", "p_"]), "x".repeat(59)),
    );
    not_found(
        "typeform-token",
        "tfp_your_personal_access_token_goes_here_please",
    );
}
