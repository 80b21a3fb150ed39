//! Tests for the rules in rules/saas.toml.

use super::*;

/// `value` assigned to a name in the ways config files and code write it, and to a
/// subscript. `upper` is the SCREAMING_CASE name (`ZENDESK_API_TOKEN`), `camel` the
/// camelCase one (`zendeskToken`).
fn assignments(upper: &str, camel: &str, value: &str) -> Vec<String> {
    let name = Name {
        upper: upper.to_owned(),
        snake: upper.to_ascii_lowercase(),
        camel: camel.to_owned(),
    };
    let mut texts = named_contexts(&name, value);
    texts.push(format!("config['{}'] = \"{value}\"", name.snake));
    texts
}

/// `rule` finds `value` in every assignment context, and reports it as the only finding.
#[track_caller]
fn found_in_assignments(rule: &str, upper: &str, camel: &str, value: &str) {
    for text in assignments(upper, camel, value) {
        only(rule, &text);
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
    // Any credential word after the provider's name.
    for (upper, camel) in [
        ("LINEAR_API_KEY", "linearApiKey"),
        ("LINEAR_TOKEN", "linearToken"),
        ("LINEAR_AUTH", "linearKey"),
    ] {
        found_in_assignments("linear-client-secret", upper, camel, &secret);
    }
    // "linear" without a credential word is the common word; an id; a placeholder.
    not_found(
        "linear-client-secret",
        &format!("linear_layer_hash = \"{secret}\""),
    );
    not_found(
        "linear-client-secret",
        &format!("LINEAR_PROJECT_ID={secret}"),
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
    // Anywhere after the name on its line, with no operator.
    found("notion-legacy-token", &format!("notion {legacy}"));
    found(
        "notion-legacy-token",
        &format!("const notion = new Client({{ auth: \"{legacy}\" }});"),
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
    found(
        "hubspot-api-key",
        &format!("var hubspotToken string = \"{}\"", key.to_ascii_uppercase()),
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

#[test]
fn dropbox() {
    let short = format!("{}{}", p(&["s", "l."]), random(1, 138, URLSAFE));
    found(
        "dropbox-short-lived-token",
        &format!("DROPBOX_ACCESS_TOKEN={short}"),
    );
    let newer = format!("{}{}", p(&["s", "l.u."]), random(2, 600, URLSAFE));
    found(
        "dropbox-short-lived-token",
        &format!("dbx = dropbox.Dropbox(\"{newer}\")"),
    );
    not_found(
        "dropbox-short-lived-token",
        &format!("{}{}", p(&["s", "l."]), "A".repeat(138)),
    );
    not_found(
        "dropbox-short-lived-token",
        &format!("ssl.{}", random(3, 138, URLSAFE)),
    );
    not_found("dropbox-short-lived-token", "import ssl.SSLContext;");
    let long = format!(
        "{}{}{}",
        random(4, 11, ALNUM),
        "A".repeat(10),
        random(5, 43, URLSAFE)
    );
    found_in_assignments(
        "dropbox-long-lived-token",
        "DROPBOX_TOKEN",
        "dropboxToken",
        &long,
    );
    not_found("dropbox-long-lived-token", &format!("OTHER_TOKEN={long}"));
    not_found(
        "dropbox-long-lived-token",
        &format!("DROPBOX_TOKEN={}", random(6, 64, URLSAFE)),
    );
    let secret = format!("{}7", random(7, 14, LOWER_DIGITS));
    found_in_assignments(
        "dropbox-app-secret",
        "DROPBOX_APP_SECRET",
        "dropboxAppSecret",
        &secret,
    );
    // Any credential word after the provider's name (the app key has the same shape).
    for (upper, camel) in [
        ("DROPBOX_API_KEY", "dropboxApiKey"),
        ("DROPBOX_APP_KEY", "dropboxKey"),
        ("DROPBOX_PASSWORD", "dropboxCreds"),
    ] {
        found_in_assignments("dropbox-app-secret", upper, camel, &secret);
    }
    not_found("dropbox-app-secret", &format!("DROPBOX_USER_ID={secret}"));
    not_found("dropbox-app-secret", &format!("API_KEY={secret}"));
    // A placeholder of the right length (split: the generic rule would flag it here).
    not_found(
        "dropbox-app-secret",
        &p(&["DROPBOX_APP_SECRET=", "yourappsecret12"]),
    );
}

#[test]
fn duffel_easypost_frameio() {
    for (seed, mode) in [(1, "test_"), (2, "live_")] {
        let token = format!("{}{}", p(&["duffel_", mode]), random(seed, 43, URLSAFE));
        found("duffel-api-token", &format!("DUFFEL_ACCESS_TOKEN={token}"));
    }
    not_found(
        "duffel-api-token",
        &format!("{}{}", p(&["duffel_", "test_"]), "x".repeat(43)),
    );
    not_found(
        "duffel-api-token",
        &format!("{}{}", p(&["duffel_", "prod_"]), random(3, 43, URLSAFE)),
    );
    for (seed, kind) in [(4, "AK"), (5, "TK")] {
        let key = format!("{}{}", p(&["EZ", kind]), random(seed, 54, ALNUM));
        found(
            "easypost-api-key",
            &format!("EasyPost::Client.new(api_key: '{key}')"),
        );
    }
    not_found(
        "easypost-api-key",
        &format!("{}{}", p(&["EZ", "AK"]), random(6, 30, ALNUM)),
    );
    not_found(
        "easypost-api-key",
        &format!("{}{}", p(&["ez", "ak"]), random(7, 54, ALNUM)),
    );
    let frame = format!("{}{}", p(&["fio", "-u-"]), random(8, 64, URLSAFE));
    found("frameio-api-token", &format!("FRAMEIO_TOKEN=\"{frame}\""));
    not_found(
        "frameio-api-token",
        &format!("{}{}", p(&["fio", "-u-"]), "x".repeat(64)),
    );
    not_found(
        "frameio-api-token",
        &format!("{}{}", p(&["fio", "-u-"]), random(9, 30, URLSAFE)),
    );
}

#[test]
fn adobe() {
    let secret = format!("{}{}7", p(&["p8", "e-"]), random(1, 31, ALNUM));
    found(
        "adobe-client-secret",
        &format!("ADOBE_CLIENT_SECRET={secret}"),
    );
    found(
        "adobe-client-secret",
        &format!("-d 'client_secret={secret}&grant_type=client_credentials'"),
    );
    not_found(
        "adobe-client-secret",
        &format!("{}{}", p(&["p8", "e-"]), "x".repeat(32)),
    );
    not_found(
        "adobe-client-secret",
        &format!("{}{}", p(&["p8", "e-"]), random(2, 20, ALNUM)),
    );
    let id = random(3, 32, HEX);
    found_in_assignments("adobe-client-id", "ADOBE_CLIENT_ID", "adobeClientId", &id);
    found("adobe-client-id", &format!("ADOBE_API_KEY=\"{id}\""));
    found_in_assignments("adobe-client-id", "ADOBE_TOKEN", "adobeToken", &id);
    not_found("adobe-client-id", &format!("ADOBE_ORG_ID=\"{id}\""));
    // An Adobe name without an id word; an id word without Adobe.
    not_found(
        "adobe-client-id",
        &format!("adobe_analytics_hash = \"{id}\""),
    );
    not_found("adobe-client-id", &format!("CLIENT_ID=\"{id}\""));
}

#[test]
fn airtable() {
    let token = format!(
        "{}{}.{}",
        p(&["pa", "t"]),
        random(1, 14, ALNUM),
        random(2, 64, HEX)
    );
    found(
        "airtable-personal-access-token",
        &format!("AIRTABLE_API_KEY={token}"),
    );
    found(
        "airtable-personal-access-token",
        &format!("const base = new Airtable({{ apiKey: \"{token}\" }}).base(\"app1\");"),
    );
    found(
        "airtable-personal-access-token",
        &format!("export AIRTABLE_TOKEN='{token}'"),
    );
    found_in_assignments(
        "airtable-personal-access-token",
        "AIRTABLE_TOKEN",
        "airtableToken",
        &token,
    );
    // No Airtable name on the line; a placeholder.
    not_found(
        "airtable-personal-access-token",
        &format!("x = \"{token}\""),
    );
    not_found(
        "airtable-personal-access-token",
        &format!(
            "AIRTABLE_TOKEN={}{}.{}",
            p(&["pa", "t"]),
            "x".repeat(14),
            "0".repeat(64)
        ),
    );
    let legacy = format!("{}{}7", p(&["ke", "y"]), random(3, 13, ALNUM));
    found_in_assignments(
        "airtable-api-key",
        "AIRTABLE_API_KEY",
        "airtableApiKey",
        &legacy,
    );
    not_found("airtable-api-key", "AIRTABLE_API_KEY=keyXXXXXXXXXXXXXX");
    not_found("airtable-api-key", &format!("OTHER_API_KEY={legacy}"));
    // The 17 characters without their key prefix, under a name with a credential word.
    let bare = format!("{}7", random(4, 16, LOWER_DIGITS));
    found_in_assignments("airtable-api-key", "AIRTABLE_TOKEN", "airtableToken", &bare);
    let mixed = format!("{}7", random(5, 16, ALNUM));
    found_in_assignments(
        "airtable-api-key",
        "AIRTABLE_API_KEY",
        "airtableApiKey",
        &mixed,
    );
    // Without a credential word (a base id), an id prefix, a placeholder, a wrong length.
    not_found("airtable-api-key", &format!("AIRTABLE_BASE_ID={bare}"));
    not_found(
        "airtable-api-key",
        &format!(
            "AIRTABLE_API_KEY={}{}7",
            p(&["ap", "p"]),
            random(6, 13, ALNUM)
        ),
    );
    not_found("airtable-api-key", "AIRTABLE_TOKEN=abcdefghijklmnopq");
    not_found(
        "airtable-api-key",
        &format!("AIRTABLE_TOKEN={}7", random(7, 17, LOWER_DIGITS)),
    );
}

#[test]
fn algolia() {
    let key = random(1, 32, HEX);
    found_in_assignments(
        "algolia-api-key",
        "ALGOLIA_ADMIN_KEY",
        "algoliaAdminKey",
        &key,
    );
    found("algolia-api-key", &format!("ALGOLIA_API_KEY=\"{key}\""));
    // Search-only keys are meant for browsers.
    not_found("algolia-api-key", &format!("ALGOLIA_SEARCH_KEY={key}"));
    not_found(
        "algolia-api-key",
        &format!("NEXT_PUBLIC_ALGOLIA_SEARCH_API_KEY=\"{key}\""),
    );
    not_found(
        "algolia-api-key",
        &format!("ALGOLIA_ADMIN_KEY={}", "0".repeat(32)),
    );
}

#[test]
fn asana() {
    let old = format!("1/{}:{}", random(1, 16, DIGITS), random(2, 32, HEX));
    let new = format!(
        "2/{}/{}:{}",
        random(3, 16, DIGITS),
        random(4, 16, DIGITS),
        random(5, 32, HEX)
    );
    for token in [&old, &new] {
        found(
            "asana-personal-access-token",
            &format!("ASANA_ACCESS_TOKEN={token}"),
        );
        found(
            "asana-personal-access-token",
            &format!("client = asana.Client.access_token('{token}')"),
        );
    }
    found_in_assignments(
        "asana-personal-access-token",
        "ASANA_TOKEN",
        "asanaToken",
        &new,
    );
    not_found("asana-personal-access-token", &format!("TOKEN={new}"));
    not_found(
        "asana-personal-access-token",
        &format!(
            "ASANA_ACCESS_TOKEN=1/{}:{}",
            random(6, 16, DIGITS),
            "0".repeat(32)
        ),
    );
    let secret = format!("{}7", random(7, 31, ALNUM));
    found_in_assignments(
        "asana-client-secret",
        "ASANA_CLIENT_SECRET",
        "asanaClientSecret",
        &secret,
    );
    found_in_assignments(
        "asana-client-secret",
        "ASANA_API_KEY",
        "asanaToken",
        &secret,
    );
    not_found("asana-client-secret", &format!("ASANA_WORKSPACE={secret}"));
    let id = random(8, 16, DIGITS);
    found_in_assignments("asana-client-id", "ASANA_CLIENT_ID", "asanaClientId", &id);
    // Any credential word after the provider's name.
    for (upper, camel) in [
        ("ASANA_API_KEY", "asanaKey"),
        ("ASANA_TOKEN", "asanaToken"),
        ("ASANA_AUTH", "asanaCredentials"),
    ] {
        found_in_assignments("asana-client-id", upper, camel, &id);
    }
    // A project, workspace or user id is a number too, but no credential; "author" is not
    // "auth".
    not_found("asana-client-id", &format!("ASANA_PROJECT_ID={id}"));
    not_found("asana-client-id", &format!("asana_user_id: {id}"));
    not_found("asana-client-id", &format!("asana_author_gid = \"{id}\""));
    not_found("asana-client-id", &format!("asanaAuthorId := `{id}`"));
    not_found(
        "asana-client-id",
        &format!("ASANA_CLIENT_ID={}", "1".repeat(16)),
    );
}

#[test]
fn authress_beamer() {
    let key = format!(
        "{}{}.{}.{}{}.{}",
        p(&["s", "c_"]),
        random(1, 10, LOWER_DIGITS),
        random(2, 4, LOWER_DIGITS),
        p(&["ac", "c_"]),
        random(3, 12, LOWER_DIGITS),
        random(4, 60, URLSAFE)
    );
    found("authress-access-key", &format!("AUTHRESS_KEY={key}"));
    found(
        "authress-access-key",
        &format!("new ServiceClientTokenProvider('{key}', 'https://login.acme.com')"),
    );
    not_found(
        "authress-access-key",
        &format!(
            "{}{}.{}.{}{}.{}",
            p(&["s", "c_"]),
            random(5, 10, LOWER_DIGITS),
            random(6, 4, LOWER_DIGITS),
            p(&["ac", "c_"]),
            random(7, 12, LOWER_DIGITS),
            "x".repeat(60)
        ),
    );
    not_found("authress-access-key", "settings.acc_enabled = true");
    let beamer = format!("{}{}", p(&["b", "_"]), random(8, 44, URLSAFE));
    found_in_assignments("beamer-api-key", "BEAMER_API_KEY", "beamerApiKey", &beamer);
    not_found("beamer-api-key", &format!("OTHER_API_KEY={beamer}"));
    not_found(
        "beamer-api-key",
        &format!("BEAMER_API_KEY={}{}", p(&["b", "_"]), "x".repeat(44)),
    );
}

#[test]
fn contentful() {
    let pat = format!("{}{}", p(&["CFP", "AT-"]), random(1, 43, URLSAFE));
    found(
        "contentful-personal-access-token",
        &format!("CONTENTFUL_MANAGEMENT_TOKEN={pat}"),
    );
    not_found(
        "contentful-personal-access-token",
        &format!("{}{}", p(&["CFP", "AT-"]), "x".repeat(43)),
    );
    not_found(
        "contentful-api-token",
        &format!("CONTENTFUL_MANAGEMENT_TOKEN={pat}"),
    );
    let token = format!("{}7", random(2, 42, URLSAFE));
    found_in_assignments(
        "contentful-api-token",
        "CONTENTFUL_DELIVERY_TOKEN",
        "contentfulAccessToken",
        &token,
    );
    not_found(
        "contentful-api-token",
        &format!("CONTENTFUL_SPACE_ID={}", random(3, 12, LOWER_DIGITS)),
    );
    not_found("contentful-api-token", &format!("OTHER_TOKEN={token}"));
}

#[test]
fn adafruit() {
    let key = format!("{}{}", p(&["ai", "o_"]), random(1, 28, ALNUM));
    found("adafruit-io-key", &format!("ADAFRUIT_IO_KEY={key}"));
    found("adafruit-io-key", &format!("aio = Client('acme', '{key}')"));
    not_found(
        "adafruit-io-key",
        &format!("{}{}", p(&["ai", "o_"]), "x".repeat(28)),
    );
    not_found(
        "adafruit-io-key",
        "import aio_pika_helpers_for_everyone_now",
    );
    let legacy = random(2, 32, HEX);
    found_in_assignments(
        "adafruit-io-key",
        "ADAFRUIT_IO_KEY",
        "adafruitIoKey",
        &legacy,
    );
    not_found("adafruit-io-key", &format!("OTHER_KEY={legacy}"));
}

/// Named keys of one shape: each found in every assignment context under its name, and
/// not under another provider's name.
#[test]
fn keys_under_a_provider_name() {
    let cases: Vec<(&str, &str, &str, String)> = vec![
        (
            "zendesk-api-token",
            "ZENDESK_API_TOKEN",
            "zendeskToken",
            format!("{}7", random(1, 39, ALNUM)),
        ),
        (
            "intercom-access-token",
            "INTERCOM_ACCESS_TOKEN",
            "intercomToken",
            format!("{}{}7=", p(&["dG9r", "Oj"]), random(2, 52, BASE64)),
        ),
        (
            "etsy-api-key",
            "ETSY_API_KEY",
            "etsyApiKey",
            format!("{}7", random(3, 23, LOWER_DIGITS)),
        ),
        (
            "finnhub-api-key",
            "FINNHUB_API_KEY",
            "finnhubKey",
            format!("{}7", random(4, 19, LOWER_DIGITS)),
        ),
        (
            "flickr-api-key",
            "FLICKR_API_KEY",
            "flickrApiKey",
            random(5, 32, HEX),
        ),
        (
            "freshbooks-access-token",
            "FRESHBOOKS_ACCESS_TOKEN",
            "freshbooksToken",
            format!("{}7", random(6, 63, ALNUM)),
        ),
        (
            "nytimes-api-key",
            "NYTIMES_API_KEY",
            "nytimesApiKey",
            format!("{}7", random(7, 31, ALNUM)),
        ),
        (
            "rapidapi-key",
            "RAPIDAPI_KEY",
            "rapidApiKey",
            format!("{}7", random(8, 49, ALNUM)),
        ),
        (
            "privateai-api-key",
            "PRIVATE_AI_API_KEY",
            "privateAiKey",
            format!("{}7", random(9, 31, ALNUM)),
        ),
        (
            "looker-client-secret",
            "LOOKERSDK_CLIENT_SECRET",
            "lookerClientSecret",
            format!("{}7", random(10, 23, ALNUM)),
        ),
        (
            "looker-client-id",
            "LOOKERSDK_CLIENT_ID",
            "lookerClientId",
            format!("{}7", random(11, 19, ALNUM)),
        ),
        (
            "meraki-api-key",
            "MERAKI_DASHBOARD_API_KEY",
            "merakiApiKey",
            random(12, 40, HEX),
        ),
        (
            "squarespace-api-key",
            "SQUARESPACE_API_KEY",
            "squarespaceApiKey",
            uuid(130),
        ),
    ];
    for (rule, upper, camel, value) in &cases {
        found_in_assignments(rule, upper, camel, value);
        // The name must be on the value's line: a section header above it is not enough.
        let section = &upper[..upper.find('_').unwrap()];
        not_found(rule, &format!("[{section}]\ncredentials = \"{value}\""));
        not_found(
            rule,
            &format!("ACME_{}={value}", &upper[upper.find('_').unwrap() + 1..]),
        );
    }
}

#[test]
fn named_keys_near_misses() {
    // Placeholders and words under the right name.
    not_found(
        "zendesk-api-token",
        &format!("ZENDESK_API_TOKEN={}", "x".repeat(40)),
    );
    not_found("etsy-api-key", "ETSY_API_KEY=yourapikeystringgoeshere");
    // "etsy" inside another word (SetSysctl) is no Etsy name; a capitalised one is.
    let keystring = format!("{}7", random(20, 23, LOWER_DIGITS));
    not_found("etsy-api-key", &format!("SetSysctl = \"{keystring}\""));
    not_found("etsy-api-key", &format!("resetSystem := \"{keystring}\""));
    found("etsy-api-key", &format!("myEtsyApiKey = \"{keystring}\""));
    found("etsy-api-key", &format!("SHOP_ETSY_KEY={keystring}"));
    not_found(
        "finnhub-api-key",
        &format!("FINNHUB_API_KEY={}", "a".repeat(20)),
    );
    not_found(
        "flickr-api-key",
        &format!("FLICKR_API_KEY={}", "0".repeat(32)),
    );
    not_found(
        "meraki-api-key",
        &format!("MERAKI_API_KEY={}", "0".repeat(40)),
    );
    not_found(
        "rapidapi-key",
        "\"X-RapidAPI-Key\": \"your-rapidapi-key-goes-in-here-please-and-thank-you\"",
    );
    // The wrong length under the right name.
    not_found(
        "intercom-access-token",
        &format!("INTERCOM_APP_ID={}", random(20, 8, LOWER_DIGITS)),
    );
    not_found(
        "freshbooks-access-token",
        &format!("FRESHBOOKS_ACCESS_TOKEN={}", random(21, 40, ALNUM)),
    );
    // An id word, not a secret's, and the other way round.
    not_found(
        "looker-client-secret",
        &format!("LOOKERSDK_CLIENT_ID={}7", random(22, 23, ALNUM)),
    );
    not_found(
        "looker-client-id",
        &format!("LOOKERSDK_BASE_URL={}7", random(23, 19, ALNUM)),
    );
    // Any credential word after the provider's name: one finding for one value.
    let looker_id = format!("{}7", random(25, 19, ALNUM));
    found_in_assignments(
        "looker-client-id",
        "LOOKER_TOKEN",
        "lookerApiKey",
        &looker_id,
    );
    let looker_secret = format!("{}7", random(26, 23, ALNUM));
    found_in_assignments(
        "looker-client-secret",
        "LOOKER_API_KEY",
        "lookerToken",
        &looker_secret,
    );
    found_in_assignments(
        "hubspot-api-key",
        "HUBSPOT_AUTH",
        "hubspotPassword",
        &uuid(141),
    );
    found_in_assignments(
        "squarespace-api-key",
        "SQUARESPACE_TOKEN",
        "squarespaceCredentials",
        &uuid(142),
    );
    // Meraki is Cisco's: a Cisco name with a credential word, not one without.
    let meraki = random(27, 40, HEX);
    found_in_assignments("meraki-api-key", "CISCO_API_KEY", "ciscoKey", &meraki);
    found_in_assignments("meraki-api-key", "CISCO_TOKEN", "ciscoToken", &meraki);
    not_found("meraki-api-key", &format!("CISCO_COMMIT={meraki}"));
    not_found("meraki-api-key", &format!("cisco_device_id: \"{meraki}\""));
    not_found(
        "looker-client-id",
        &format!("LOOKER_PROJECT_ID={looker_id}"),
    );
    // A Squarespace UUID that is no key.
    not_found(
        "squarespace-api-key",
        &format!("squarespace_website_id: \"{}\"", uuid(140)),
    );
    // The header form of the RapidAPI key.
    found(
        "rapidapi-key",
        &format!(
            "headers = {{\"X-RapidAPI-Key\": \"{}7\"}}",
            random(24, 49, ALNUM)
        ),
    );
}

#[test]
fn freemius() {
    let key = format!(
        "{}{}#&{}",
        p(&["s", "k_"]),
        random(1, 13, ALNUM),
        random(2, 14, ALNUM)
    );
    let config = format!(
        "fs_dynamic_init( array(\n    'id' => '1234',\n    'public_key' => 'pk_{}',\n    'secret_key' => '{key}',\n) );",
        random(3, 29, HEX)
    );
    let rules = rules_in(&config);
    assert_eq!(rules, ["freemius-secret-key"], "{config}");
    found(
        "freemius-secret-key",
        &format!("\"secret_key\" => \"{key}\","),
    );
    found_in_assignments(
        "freemius-secret-key",
        "FREEMIUS_SECRET_KEY",
        "freemiusKey",
        &key,
    );
    not_found(
        "freemius-secret-key",
        &format!("OTHER_SECRET_KEY=\"{key}\""),
    );
    // Another name, the wrong length, no quotes around the name.
    not_found("freemius-secret-key", &format!("'other_key' => '{key}',"));
    not_found(
        "freemius-secret-key",
        &format!(
            "'secret_key' => '{}{}',",
            p(&["s", "k_"]),
            random(4, 20, ALNUM)
        ),
    );
    not_found("freemius-secret-key", &format!("secret_key => '{key}',"));
}

#[test]
fn lob() {
    let key = format!("{}{}", p(&["te", "st_"]), random(1, 35, HEX));
    found_in_assignments("lob-api-key", "LOB_API_KEY", "lobApiKey", &key);
    found(
        "lob-api-key",
        &format!("const Lob = require('lob')('{key}');"),
    );
    let live = format!("{}{}", p(&["li", "ve_"]), random(2, 35, HEX));
    found("lob-api-key", &format!("lob = Lob(api_key=\"{live}\")"));
    found("lob-api-key", &format!("lob.api_key = '{live}'"));
    // Inside another word (blob, global), or no Lob name at all.
    not_found("lob-api-key", &format!("blob_key = \"{key}\""));
    not_found("lob-api-key", &format!("global_key = \"{key}\""));
    not_found("lob-api-key", &format!("api_key = \"{key}\""));
    not_found(
        "lob-api-key",
        &format!("LOB_API_KEY={}{}", p(&["te", "st_"]), "0".repeat(35)),
    );
    let public = format!("{}{}", p(&["te", "st_pub_"]), random(3, 31, HEX));
    found(
        "lob-publishable-key",
        &format!("LOB_PUBLISHABLE_KEY={public}"),
    );
    found(
        "lob-publishable-key",
        &format!("{{\"lobKey\": \"{public}\"}}"),
    );
    not_found("lob-api-key", &format!("LOB_PUBLISHABLE_KEY={public}"));
    not_found("lob-publishable-key", &format!("PUBLISHABLE_KEY={public}"));
}

#[test]
fn intra42_maxmind_cloudinary() {
    let secret = format!("{}{}", p(&["s-s4", "t2ud-"]), random(1, 64, HEX));
    found(
        "intra42-client-secret",
        &format!("FT_CLIENT_SECRET={secret}"),
    );
    let other = format!("{}{}", p(&["s-s4", "t2af-"]), random(10, 64, HEX));
    found(
        "intra42-client-secret",
        &format!("Authorization: Bearer {other}"),
    );
    not_found(
        "intra42-client-secret",
        &format!("{}{}", p(&["s-s4", "t2ud-"]), "0".repeat(64)),
    );
    // The client uid is an id.
    not_found(
        "intra42-client-secret",
        &format!(
            "FT_CLIENT_ID={}{}",
            p(&["u-s4", "t2ud-"]),
            random(2, 64, HEX)
        ),
    );
    let license = format!(
        "{}_{}{}",
        random(3, 6, ALNUM),
        random(4, 29, ALNUM),
        p(&["_m", "mk"])
    );
    found(
        "maxmind-license-key",
        &format!("MAXMIND_LICENSE_KEY={license}"),
    );
    found("maxmind-license-key", &format!("LicenseKey {license}\n"));
    not_found(
        "maxmind-license-key",
        &format!("{}_{}{}", "a".repeat(6), "a".repeat(29), p(&["_m", "mk"])),
    );
    not_found(
        "maxmind-license-key",
        &format!(
            "{}_{}{}",
            random(5, 6, ALNUM),
            random(6, 20, ALNUM),
            p(&["_m", "mk"])
        ),
    );
    let url = format!(
        "{}{}:{}@acme-media",
        p(&["cloudinary", "://"]),
        random(7, 15, DIGITS),
        random(8, 27, URLSAFE)
    );
    found("cloudinary-url", &format!("CLOUDINARY_URL={url}"));
    not_found(
        "cloudinary-url",
        "CLOUDINARY_URL=cloudinary://<api_key>:<api_secret>@<cloud_name>",
    );
    not_found(
        "cloudinary-url",
        &format!(
            "{}{}:{}@demo",
            p(&["cloudinary", "://"]),
            random(9, 15, DIGITS),
            "a".repeat(27)
        ),
    );
}

#[test]
fn deepgram() {
    let key = format!("{}7", random(1, 39, HEX));
    found_in_contexts("deepgram-api-key", &["deepgram", "api", "key"], &key);
    found("deepgram-api-key", &format!("deepgram-api: {key}"));
    found("deepgram-api-key", &format!("deepgram = {key}"));
    found("deepgram-api-key", &format!("deepgram token 1 == {key}"));
    found(
        "deepgram-api-key",
        &format!("deepgram = DeepgramClient(\"{key}\")"),
    );
    // A commit hash in a git URL or pin, another name, a placeholder, a wrong length.
    not_found(
        "deepgram-api-key",
        &format!("\"resolved\": \"git+https://github.com/deepgram/sdk.git#{key}\""),
    );
    not_found("deepgram-api-key", &format!("deepgram-sdk@{key}"));
    not_found("deepgram-api-key", &format!("OTHER_API_KEY={key}"));
    not_found(
        "deepgram-api-key",
        &format!("DEEPGRAM_API_KEY={}", "0".repeat(40)),
    );
    not_found(
        "deepgram-api-key",
        &format!("DEEPGRAM_API_KEY={}", random(2, 32, HEX)),
    );
}

#[test]
fn shippo() {
    for (seed, mode) in [(1, "live"), (2, "test")] {
        let token = format!("{}{}", p(&["shippo_", mode, "_"]), random(seed, 40, HEX));
        found(
            "shippo-api-token",
            &format!("shippo_api_token = \"{token}\""),
        );
        found(
            "shippo-api-token",
            &format!("-H \"Authorization: ShippoToken {token}\""),
        );
        found("shippo-api-token", &format!("x = '{token}'"));
    }
    // Another mode, a wrong length, a placeholder.
    not_found(
        "shippo-api-token",
        &format!("{}{}", p(&["shippo_", "prod_"]), random(3, 40, HEX)),
    );
    not_found(
        "shippo-api-token",
        &format!("{}{}", p(&["shippo_", "live_"]), random(4, 30, HEX)),
    );
    not_found(
        "shippo-api-token",
        &format!("{}{}", p(&["shippo_", "test_"]), "0".repeat(40)),
    );
}

#[test]
fn chieftools() {
    for (seed, kind) in [(1, "p"), (2, "o"), (3, "r")] {
        let token = format!("{}{}7", p(&["ct", kind, "_"]), random(seed, 35, ALNUM));
        found(
            "chieftools-token",
            &format!("chieftools_api_token = \"{token}\""),
        );
        found(
            "chieftools-token",
            &format!("Authorization: Bearer {token}\n"),
        );
        let long = format!(
            "{}{}7",
            p(&["ct", kind, "_"]),
            random(seed + 10, 120, ALNUM)
        );
        found("chieftools-token", &format!("TOKEN={long}"));
    }
    // Too short, an identifier (no digit), another type letter, upper case.
    not_found(
        "chieftools-token",
        &format!("{}{}7", p(&["ct", "p_"]), random(4, 20, ALNUM)),
    );
    not_found(
        "chieftools-token",
        &format!(
            "{}AbstractFactoryBeanDefinitionReaderImpl",
            p(&["ct", "r_"])
        ),
    );
    not_found(
        "chieftools-token",
        &format!("{}{}7", p(&["ct", "x_"]), random(5, 35, ALNUM)),
    );
    not_found(
        "chieftools-token",
        &format!("{}{}7", p(&["CT", "P_"]), random(6, 35, ALNUM)),
    );
}
