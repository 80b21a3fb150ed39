//! Tests for the rules in rules/payments-messaging.toml.

use super::*;

/// Decimal digits, the first not 0.
fn number(seed: u64, n: usize) -> String {
    format!(
        "{}{}",
        random(seed, 1, b"123456789"),
        random(seed + 1, n - 1, DIGITS)
    )
}

fn discord_bot_token(seed: u64, id_digits: usize, hmac: usize) -> String {
    use base64::Engine;
    let id = number(seed, id_digits);
    format!(
        "{}.{}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id),
        random(seed + 2, 6, URLSAFE),
        random(seed + 3, hmac, URLSAFE)
    )
}

#[test]
fn discord() {
    for (seed, digits, hmac) in [(1, 18, 38), (5, 19, 27), (9, 20, 38), (13, 17, 27)] {
        let token = discord_bot_token(seed, digits, hmac);
        found("discord-bot-token", &format!("DISCORD_TOKEN={token}"));
        found(
            "discord-bot-token",
            &format!("\"discord\": {{\"bot_token\": \"{token}\"}}"),
        );
        only(
            "discord-bot-token",
            &format!("discord.Client(intents=intents).run('{token}')"),
        );
    }
    let token = discord_bot_token(20, 19, 38);
    // No Discord name on the line; the first part not a base64 snowflake; a placeholder.
    not_found("discord-bot-token", &format!("client.run('{token}')"));
    not_found(
        "discord-bot-token",
        &format!(
            "DISCORD_TOKEN={}.{}.{}",
            random(21, 24, URLSAFE),
            random(22, 6, URLSAFE),
            random(23, 38, URLSAFE)
        ),
    );
    not_found(
        "discord-bot-token",
        "DISCORD_TOKEN=MTAxMjM0NTY3ODkwMTIzNDU2.XXXXXX.XXXXXXXXXXXXXXXXXXXXXXXXXXX",
    );

    let secret = format!("{}7", random(30, 31, URLSAFE));
    found_in_contexts(
        "discord-client-secret",
        &["discord", "client", "secret"],
        &secret,
    );
    not_found(
        "discord-client-secret",
        "DISCORD_CLIENT_SECRET=your_discord_client_secret",
    );
    not_found(
        "discord-client-secret",
        &format!("DISCORD_CLIENT_SECRET={}", random(31, 20, URLSAFE)),
    );

    let id = number(32, 19);
    found_in_contexts("discord-client-id", &["discord", "client", "id"], &id);
    found_in_contexts("discord-client-id", &["discord", "application", "id"], &id);
    not_found("discord-client-id", &format!("DISCORD_GUILD_ID={id}"));
    not_found("discord-client-id", "DISCORD_CLIENT_ID=123456789012345678");
    not_found("discord-client-id", &format!("CLIENT_ID={id}"));

    for host in ["discord.com", "discordapp.com", "canary.discord.com"] {
        for version in ["", "v10/"] {
            let hook = format!(
                "https://{host}/api/{version}webhooks/{}/{}",
                number(33, 19),
                random(35, 68, URLSAFE)
            );
            only("discord-webhook", &format!("WEBHOOK_URL = \"{hook}\""));
        }
    }
    not_found(
        "discord-webhook",
        &format!(
            "https://discord.com/api/webhooks/{}/{}",
            number(36, 18),
            "x".repeat(68)
        ),
    );
    not_found(
        "discord-webhook",
        "https://discord.com/api/webhooks/{webhook.id}/{webhook.token}",
    );
}

#[test]
fn telegram() {
    let token = format!("{}:AA{}", number(1, 10), random(3, 33, URLSAFE));
    // The "AA" form anywhere, in a Bot API URL, and under a name.
    only("telegram-bot-token", &format!("BOT_TOKEN={token}"));
    only(
        "telegram-bot-token",
        &format!("curl https://api.telegram.org/bot{token}/getMe"),
    );
    for text in contexts(&["telegram", "bot", "token"], &token) {
        only("telegram-bot-token", &text);
    }
    // Another secret half, under a Telegram name only.
    let other = format!("{}:{}", number(4, 9), random(6, 35, URLSAFE));
    found("telegram-bot-token", &format!("TELEGRAM_TOKEN=\"{other}\""));
    found(
        "telegram-bot-token",
        &format!("requests.get(f\"https://api.telegram.org/bot{other}/sendMessage\")"),
    );
    not_found("telegram-bot-token", &format!("x = \"{other}\""));
    // Placeholders, a secret half of the wrong length, a time.
    not_found(
        "telegram-bot-token",
        &format!("TELEGRAM_TOKEN=123456789:AA{}", "x".repeat(33)),
    );
    not_found(
        "telegram-bot-token",
        &format!(
            "TELEGRAM_TOKEN={}:AA{}",
            number(7, 10),
            random(8, 20, URLSAFE)
        ),
    );
    not_found("telegram-bot-token", "at 12:AA the bot <bot-id>:<token>");
}

#[test]
fn slack_configuration_tokens() {
    use base64::Engine;
    let body = |seed: u64, n: usize| {
        let text = format!(
            "2-2-{}-{}-{}-{}",
            number(seed, 13),
            number(seed + 2, 13),
            number(seed + 4, 13),
            random(seed + 6, n, HEX)
        );
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(text)
    };
    for prefix in [p(&["xoxe", ".xoxp-1-"]), p(&["xoxe", ".xoxb-1-"])] {
        let token = format!("{prefix}{}", body(1, 64));
        only("slack-config-token", &format!("SLACK_CONFIG_TOKEN={token}"));
        only("slack-config-token", &format!("token: \"{token}\""));
    }
    // Refresh tokens, and tails of capitals and digits only: core.toml's slack-token, not both.
    only(
        "slack-token",
        &format!("{}{}", p(&["xoxe", "-1-"]), body(12, 64)),
    );
    let upper = format!(
        "{}{}",
        p(&["xoxe", ".xoxp-1-"]),
        random(10, 163, UPPER_DIGITS)
    );
    only("slack-token", &upper);
    // Documentation words, short or long; a truncated token.
    not_found(
        "slack-config-token",
        &p(&["xoxe", ".xoxp-1-SlackAppConfigurationAccessTokenHere"]),
    );
    not_found(
        "slack-config-token",
        &format!(
            "{}{}",
            p(&["xoxe", ".xoxp-1-"]),
            "YourSlackAppConfigurationAccessTokenGoesHere".repeat(3)
        ),
    );
    not_found(
        "slack-config-token",
        &format!("{}{}", p(&["xoxe", "-1-"]), &body(11, 10)[..40]),
    );
}

#[test]
fn teams_and_logic_app_webhooks() {
    let hook = format!(
        "https://acme.webhook.office.com/webhookb2/{}@{}/IncomingWebhook/{}/{}",
        uuid(1),
        uuid(10),
        random(20, 32, HEX),
        uuid(30)
    );
    only(
        "teams-incoming-webhook",
        &format!("TEAMS_WEBHOOK_URL={hook}"),
    );
    let v2 = format!("{hook}/V2{}", random(40, 40, URLSAFE));
    only("teams-incoming-webhook", &format!("url: \"{v2}\""));
    let old = hook.replace(
        "acme.webhook.office.com/webhookb2",
        "outlook.office.com/webhook",
    );
    only("teams-incoming-webhook", &format!("webhook_url = '{old}'"));
    not_found(
        "teams-incoming-webhook",
        "https://acme.webhook.office.com/webhookb2/00000000-0000-0000-0000-000000000000@00000000-0000-0000-0000-000000000000/IncomingWebhook/00000000000000000000000000000000/00000000-0000-0000-0000-000000000000",
    );
    not_found(
        "teams-incoming-webhook",
        "https://acme.webhook.office.com/webhookb2/<group>@<tenant>/IncomingWebhook/<id>/<owner>",
    );

    let flow = format!(
        "https://prod-27.westeurope.logic.azure.com:443/workflows/{}/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={}",
        random(50, 32, HEX),
        random(51, 43, URLSAFE)
    );
    only(
        "azure-logic-app-trigger-url",
        &format!("WORKFLOW_URL=\"{flow}\""),
    );
    for cu in ["", "cu/10/"] {
        let flow = format!(
            "https://default{}.8c.environment.api.powerplatform.com:443/powerautomate/automations/direct/{cu}workflows/{}/triggers/manual/paths/invoke?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={}",
            random(52, 30, HEX),
            random(53, 32, HEX),
            random(54, 43, URLSAFE)
        );
        only(
            "azure-logic-app-trigger-url",
            &format!("TEAMS_WEBHOOK_URL = \"{flow}\""),
        );
    }
    not_found(
        "azure-logic-app-trigger-url",
        "\"webhook_url\":\"https://defaultxxx.ac.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/xxx/triggers/manual/paths/invoke?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=xxx\"",
    );
    // Without its signature, or with a placeholder for it, the URL runs nothing.
    let unsigned = flow.split("&sig=").next().unwrap().to_string();
    not_found("azure-logic-app-trigger-url", &unsigned);
    not_found(
        "azure-logic-app-trigger-url",
        &format!("{unsigned}&sig={{signature-goes-here-in-the-template}}"),
    );
}

#[test]
fn mattermost() {
    let token = format!("{}4", random(1, 25, LOWER_DIGITS));
    found_in_contexts("mattermost-token", &["mattermost", "token"], &token);
    found_in_contexts(
        "mattermost-token",
        &["mattermost", "bot", "access", "key"],
        &token,
    );
    not_found(
        "mattermost-token",
        &format!("MATTERMOST_CHANNEL_ID={token}"),
    );
    not_found(
        "mattermost-token",
        &format!("MATTERMOST_TOKEN={}", "a".repeat(26)),
    );
    not_found("mattermost-token", &format!("OTHER_TOKEN={token}"));

    let id = random(2, 26, LOWER_DIGITS);
    only(
        "mattermost-webhook",
        &format!("url = \"https://mattermost.acme.io/hooks/{id}\""),
    );
    only(
        "mattermost-webhook",
        &format!("MATTERMOST_WEBHOOK_URL=https://chat.acme.io/hooks/{id}"),
    );
    not_found(
        "mattermost-webhook",
        &format!("url = \"https://chat.acme.io/hooks/{id}\""),
    );
    not_found(
        "mattermost-webhook",
        "MATTERMOST_WEBHOOK_URL=https://mattermost.acme.io/hooks/xxxxxxxxxxxxxxxxxxxxxxxxxx",
    );
}

#[test]
fn facebook() {
    let token = format!("{}{}", p(&["EA", "A"]), random(1, 180, ALNUM));
    only("facebook-access-token", &format!("FB_ACCESS_TOKEN={token}"));
    only(
        "facebook-access-token",
        &format!("curl 'https://graph.facebook.com/v19.0/me?access_token={token}&fields=id'"),
    );
    // Too short, a placeholder, lower case, inside a base64 blob.
    not_found(
        "facebook-access-token",
        &format!("EAA{}", random(2, 40, ALNUM)),
    );
    not_found("facebook-access-token", &format!("EAA{}", "x".repeat(120)));
    not_found(
        "facebook-access-token",
        &format!("eaa{}", random(3, 180, ALNUM)),
    );
    not_found(
        "facebook-access-token",
        &format!("data = \"{}+{token}\"", random(4, 40, BASE64)),
    );

    let secret = random(5, 32, HEX);
    found_in_contexts(
        "facebook-app-secret",
        &["facebook", "app", "secret"],
        &secret,
    );
    found_in_contexts("facebook-app-secret", &["fb", "app", "secret"], &secret);
    not_found(
        "facebook-app-secret",
        &format!("FACEBOOK_APP_ID_HASH={secret}"),
    );
    not_found(
        "facebook-app-secret",
        &format!("FACEBOOK_APP_SECRET={}", "0".repeat(32)),
    );
}

#[test]
fn twitter() {
    let bearer = format!(
        "{}{}%2B{}%3D{}",
        "A".repeat(22),
        random(1, 12, ALNUM),
        random(2, 20, ALNUM),
        random(3, 50, ALNUM)
    );
    only(
        "twitter-bearer-token",
        &format!("curl -H \"Authorization: Bearer {bearer}\" https://api.x.com/2/tweets"),
    );
    only(
        "twitter-bearer-token",
        &format!("TWITTER_BEARER_TOKEN={bearer}"),
    );
    // Base64 of zero bytes, without "%"; a placeholder.
    not_found(
        "twitter-bearer-token",
        &format!("{}{}", "A".repeat(40), random(4, 80, BASE64)),
    );
    not_found(
        "twitter-bearer-token",
        &format!("{}%2B{}", "A".repeat(22), "A".repeat(80)),
    );

    let key = format!("{}3", random(5, 24, ALNUM));
    found_in_contexts("twitter-api-key", &["twitter", "api", "key"], &key);
    found_in_contexts("twitter-api-key", &["twitter", "consumer", "key"], &key);
    not_found("twitter-api-key", &format!("TWITTER_HANDLE={key}"));
    not_found("twitter-api-key", &format!("API_KEY_25={key}x"));

    for (words, value) in [
        (
            &["twitter", "api", "secret"][..],
            format!("{}3", random(6, 49, ALNUM)),
        ),
        (
            &["twitter", "access", "token"][..],
            format!("{}-{}", number(7, 19), random(9, 30, ALNUM)),
        ),
        (
            &["twitter", "access", "token", "secret"][..],
            format!("{}3", random(10, 44, ALNUM)),
        ),
    ] {
        found_in_contexts("twitter-secret", words, &value);
    }
    not_found(
        "twitter-secret",
        &format!("INSTAGRAM_SECRET={}", random(11, 50, ALNUM)),
    );
    not_found(
        "twitter-secret",
        &format!("TWITTER_API_SECRET={}", random(12, 40, ALNUM)),
    );
    not_found(
        "twitter-secret",
        &format!("TWITTER_API_SECRET={}", "abcde".repeat(10)),
    );
}

#[test]
fn linkedin() {
    let secret = format!(
        "{}{}.{}==",
        p(&["WPL_", "AP1."]),
        random(1, 16, ALNUM),
        random(2, 6, BASE64)
    );
    only(
        "linkedin-client-secret",
        &format!("CLIENT_SECRET = \"{secret}\""),
    );
    found_in_contexts(
        "linkedin-client-secret",
        &["linkedin", "client", "secret"],
        &secret,
    );
    let legacy = format!("{}7", random(3, 15, ALNUM));
    found_in_contexts(
        "linkedin-client-secret",
        &["linkedin", "client", "secret"],
        &legacy,
    );
    only(
        "linkedin-client-secret",
        &format!("SOCIAL_AUTH_LINKEDIN_OAUTH2_SECRET = '{legacy}'"),
    );
    not_found(
        "linkedin-client-secret",
        &format!("CLIENT_SECRET = \"{legacy}\""),
    );
    not_found(
        "linkedin-client-secret",
        "WPL_AP1.xxxxxxxxxxxxxxxx.xxxxxx==",
    );

    let id = format!("86{}", random(4, 12, LOWER_DIGITS));
    found_in_contexts("linkedin-client-id", &["linkedin", "client", "id"], &id);
    not_found("linkedin-client-id", &format!("LINKEDIN_PROFILE={id}"));
    not_found("linkedin-client-id", "LINKEDIN_CLIENT_ID=yourclientidhere");
}

#[test]
fn twitch() {
    let secret = format!("{}9", random(1, 29, LOWER_DIGITS));
    found_in_contexts("twitch-token", &["twitch", "client", "secret"], &secret);
    found_in_contexts("twitch-token", &["twitch", "oauth", "token"], &secret);
    only("twitch-token", &format!("TMI_TOKEN=oauth:{secret}"));
    only("twitch-token", &format!("PASS oauth:{secret}\r\n"));
    not_found("twitch-token", &format!("TWITCH_CHANNEL={secret}"));
    not_found(
        "twitch-token",
        &format!("TMI_TOKEN=oauth:{}", "a".repeat(30)),
    );

    let id = format!("{}2", random(2, 29, LOWER_DIGITS));
    found_in_contexts("twitch-client-id", &["twitch", "client", "id"], &id);
    not_found("twitch-client-id", &format!("TWITCH_USER_ID={id}"));
    not_found("twitch-client-id", &format!("CLIENT_ID={id}"));
}

#[test]
fn messagebird() {
    let key = format!("{}5", random(1, 24, ALNUM));
    found_in_contexts(
        "messagebird-api-key",
        &["messagebird", "access", "key"],
        &key,
    );
    found_in_contexts(
        "messagebird-api-key",
        &["messagebird", "api", "key"],
        &format!("test_{key}"),
    );
    only(
        "messagebird-api-key",
        &format!("const messagebird = require('messagebird')('{key}');"),
    );
    only(
        "messagebird-api-key",
        &format!("client = messagebird.Client(\"{key}\")"),
    );
    not_found(
        "messagebird-api-key",
        &format!("MESSAGEBIRD_ORIGINATOR={}", random(2, 10, ALNUM)),
    );
    not_found(
        "messagebird-api-key",
        "MESSAGEBIRD_ACCESS_KEY=YourMessageBirdAccessKey",
    );
    not_found("messagebird-api-key", &format!("SMS_KEY={key}"));
}

#[test]
fn sendbird() {
    let token = random(1, 40, HEX);
    found_in_contexts("sendbird-api-token", &["sendbird", "api", "token"], &token);
    found_in_contexts("sendbird-api-token", &["sendbird", "master", "key"], &token);
    not_found("sendbird-api-token", &format!("SENDBIRD_COMMIT={token}"));
    not_found("sendbird-api-token", &format!("GIT_TOKEN_SHA={token}"));

    let id = uuid(2).to_ascii_uppercase();
    found_in_contexts("sendbird-app-id", &["sendbird", "app", "id"], &id);
    not_found("sendbird-app-id", &format!("SENDBIRD_USER_ID={id}"));
    not_found(
        "sendbird-app-id",
        "SENDBIRD_APP_ID=00000000-0000-0000-0000-000000000000",
    );
}

#[test]
fn square() {
    let token = format!("{}{}", p(&["EA", "AA"]), random(1, 60, URLSAFE));
    only(
        "square-access-token",
        &format!("SQUARE_ACCESS_TOKEN={token}"),
    );
    only(
        "square-access-token",
        &format!("Authorization: Bearer {token}"),
    );
    let legacy = format!("{}{}", p(&["sq0", "atp-"]), random(2, 22, URLSAFE));
    only("square-access-token", &format!("token: '{legacy}'"));
    not_found("square-access-token", &format!("EAAA{}", "A".repeat(60)));
    not_found(
        "square-access-token",
        &format!("EAAA{}", random(3, 50, URLSAFE)),
    );
    not_found(
        "square-access-token",
        &format!("sq0atp-{}", random(4, 30, URLSAFE)),
    );

    for prefix in [p(&["sq0", "csp-"]), p(&["sandbox-", "sq0", "csb-"])] {
        let secret = format!("{prefix}{}", random(5, 43, URLSAFE));
        only(
            "square-oauth-secret",
            &format!("SQUARE_APP_SECRET=\"{secret}\""),
        );
    }
    not_found("square-oauth-secret", &format!("sq0csp-{}", "x".repeat(43)));
    // Application ids are public.
    assert_eq!(
        rules_in(&format!(
            "applicationId: '{}{}'",
            p(&["sq0", "idp-"]),
            random(6, 22, URLSAFE)
        )),
        Vec::<String>::new()
    );
}

#[test]
fn webhook_signing_secrets() {
    let stripe = format!("{}{}", p(&["wh", "sec_"]), random(1, 32, ALNUM));
    only(
        "webhook-signing-secret",
        &format!("STRIPE_WEBHOOK_SECRET={stripe}"),
    );
    let cli = format!("{}{}", p(&["wh", "sec_"]), random(2, 64, HEX));
    only(
        "webhook-signing-secret",
        &format!("endpoint_secret = '{cli}'"),
    );
    let svix = format!("{}{}=", p(&["wh", "sec_"]), random(3, 43, BASE64));
    only(
        "webhook-signing-secret",
        &format!("CLERK_WEBHOOK_SECRET=\"{svix}\""),
    );
    not_found("webhook-signing-secret", "STRIPE_WEBHOOK_SECRET=whsec_...");
    not_found(
        "webhook-signing-secret",
        &format!("whsec_{}", "x".repeat(32)),
    );
    not_found(
        "webhook-signing-secret",
        &format!("whsec_{}", random(4, 16, ALNUM)),
    );
}

#[test]
fn plaid() {
    for env in ["sandbox", "development", "production"] {
        let token = format!("{}{env}-{}", p(&["acc", "ess-"]), uuid(1));
        only("plaid-access-token", &format!("PLAID_ACCESS_TOKEN={token}"));
        only(
            "plaid-access-token",
            &format!("{{\"access_token\": \"{token}\", \"item_id\": \"x\"}}"),
        );
    }
    not_found(
        "plaid-access-token",
        "access-sandbox-00000000-0000-0000-0000-000000000000",
    );
    not_found("plaid-access-token", "access-sandbox-<your-access-token>");
    not_found("plaid-access-token", &format!("access-staging-{}", uuid(2)));

    let secret = random(3, 30, HEX);
    found_in_contexts("plaid-secret", &["plaid", "secret"], &secret);
    found_in_contexts("plaid-secret", &["plaid", "sandbox", "secret"], &secret);
    not_found(
        "plaid-secret",
        &format!("PLAID_SECRET={}", random(4, 24, HEX)),
    );
    not_found("plaid-secret", &format!("PLAID_ITEM_HASH={secret}"));

    let id = random(5, 24, HEX);
    found_in_contexts("plaid-client-id", &["plaid", "client", "id"], &id);
    not_found("plaid-client-id", &format!("PLAID_ITEM_ID={id}"));
}

#[test]
fn flutterwave() {
    for prefix in [p(&["FLW", "SECK-"]), p(&["FLW", "SECK_TEST-"])] {
        let key = format!("{prefix}{}-X", random(1, 32, HEX));
        only("flutterwave-secret-key", &format!("FLW_SECRET_KEY={key}"));
    }
    not_found(
        "flutterwave-secret-key",
        &format!("FLWSECK_TEST-{}-X", "x".repeat(32)),
    );
    not_found(
        "flutterwave-secret-key",
        &format!("FLWSECK_TEST-{}-X", "0".repeat(32)),
    );
    // Public keys are for the browser.
    not_found(
        "flutterwave-secret-key",
        &format!("{}{}-X", p(&["FLW", "PUBK_TEST-"]), random(2, 32, HEX)),
    );

    let test = format!("{}{}", p(&["FLW", "SECK_TEST"]), random(3, 12, HEX));
    only(
        "flutterwave-encryption-key",
        &format!("FLW_ENCRYPTION_KEY={test}"),
    );
    let live = format!("{}4", random(4, 23, ALNUM));
    found_in_contexts(
        "flutterwave-encryption-key",
        &["flutterwave", "encryption", "key"],
        &live,
    );
    not_found(
        "flutterwave-encryption-key",
        &format!("FLUTTERWAVE_MERCHANT_NAME={live}"),
    );
    not_found(
        "flutterwave-encryption-key",
        "FLUTTERWAVE_ENC_KEY=yourencryptionkeyhereabc",
    );
}

#[test]
fn gocardless() {
    for env in ["live", "sandbox"] {
        let token = format!("{env}_{}", random(1, 40, URLSAFE));
        only(
            "gocardless-access-token",
            &format!("GOCARDLESS_ACCESS_TOKEN={token}"),
        );
        only(
            "gocardless-access-token",
            &format!(
                "client = gocardless_pro.Client(access_token=\"{token}\", environment=\"{env}\")"
            ),
        );
        not_found("gocardless-access-token", &format!("OTHER_TOKEN={token}"));
    }
    not_found(
        "gocardless-access-token",
        &format!("GOCARDLESS_ACCESS_TOKEN=sandbox_{}", "x".repeat(40)),
    );
}

#[test]
fn braintree() {
    let token = format!(
        "{}{}${}",
        p(&["access_token", "$production$"]),
        random(1, 16, LOWER_DIGITS),
        random(2, 32, HEX)
    );
    only(
        "braintree-access-token",
        &format!("BRAINTREE_TOKEN={token}"),
    );
    only(
        "braintree-access-token",
        &format!("gateway = braintree.BraintreeGateway(access_token=\"{token}\")"),
    );
    not_found(
        "braintree-access-token",
        "access_token$sandbox$merchant_id$private_key_here",
    );

    let key = random(3, 32, HEX);
    found_in_contexts(
        "braintree-private-key",
        &["braintree", "private", "key"],
        &key,
    );
    not_found(
        "braintree-private-key",
        &format!("BRAINTREE_PUBLIC_KEY={key}"),
    );
}

#[test]
fn coinbase() {
    let legacy = format!("{}8", random(1, 31, ALNUM));
    found_in_contexts(
        "coinbase-api-secret",
        &["coinbase", "api", "secret"],
        &legacy,
    );
    let ed25519 = format!("{}==", random(2, 86, BASE64));
    found_in_contexts(
        "coinbase-api-secret",
        &["coinbase", "private", "key"],
        &ed25519,
    );
    not_found(
        "coinbase-api-secret",
        &format!("COINBASE_WALLET_ADDRESS={legacy}"),
    );
    not_found(
        "coinbase-api-secret",
        &format!("COINBASE_API_SECRET={}", random(3, 20, ALNUM)),
    );

    let key = format!("{}1", random(4, 15, ALNUM));
    found_in_contexts("coinbase-api-key", &["coinbase", "api", "key"], &key);
    let name = format!("organizations/{}/apiKeys/{}", uuid(5), uuid(10));
    found_in_contexts(
        "coinbase-api-key",
        &["coinbase", "api", "key", "name"],
        &name,
    );
    not_found("coinbase-api-key", &format!("COINBASE_ACCOUNT={key}"));
    not_found(
        "coinbase-api-key",
        "COINBASE_API_KEY_NAME=organizations/{org_id}/apiKeys/{key_id}",
    );
}

#[test]
fn kraken() {
    let private = format!("{}==", random(1, 86, BASE64));
    found_in_contexts(
        "kraken-private-key",
        &["kraken", "private", "key"],
        &private,
    );
    found_in_contexts("kraken-private-key", &["kraken", "api", "secret"], &private);
    not_found("kraken-private-key", &format!("KRAKEN_NOTES={private}"));
    not_found(
        "kraken-private-key",
        &format!("KRAKEN_PRIVATE_KEY={}==", "A".repeat(86)),
    );

    let key = random(2, 56, BASE64);
    found_in_contexts("kraken-api-key", &["kraken", "api", "key"], &key);
    not_found("kraken-api-key", &format!("API_KEY={key}"));
    not_found(
        "kraken-api-key",
        &format!("KRAKEN_API_KEY={}", random(3, 40, BASE64)),
    );
}

#[test]
fn kucoin() {
    let secret = uuid(1);
    found_in_contexts("kucoin-api-secret", &["kucoin", "api", "secret"], &secret);
    not_found("kucoin-api-secret", &format!("KUCOIN_ORDER_ID={secret}"));
    not_found(
        "kucoin-api-secret",
        "KUCOIN_API_SECRET=00000000-0000-0000-0000-000000000000",
    );

    let passphrase = format!("{}-{}", random(2, 8, ALNUM), random(3, 6, ALNUM));
    found_in_contexts(
        "kucoin-api-passphrase",
        &["kucoin", "api", "passphrase"],
        &passphrase,
    );
    for text in [
        "KUCOIN_API_PASSPHRASE=your-passphrase",
        "kucoin_passphrase = os.environ[\"KUCOIN_PASSPHRASE\"]",
        "kucoin_passphrase: String",
        "kucoinPassphrase = config.passphrase",
        "KUCOIN_PASSPHRASE=${KUCOIN_PASSPHRASE}",
    ] {
        not_found("kucoin-api-passphrase", text);
    }

    let key = random(4, 24, HEX);
    found_in_contexts("kucoin-api-key", &["kucoin", "api", "key"], &key);
    not_found("kucoin-api-key", &format!("KUCOIN_ORDER={key}"));
}

#[test]
fn bittrex() {
    for (seed, words) in [
        (1, &["bittrex", "api", "key"]),
        (2, &["bittrex", "api", "secret"]),
    ] {
        found_in_contexts("bittrex-api-key", words, &random(seed, 32, HEX));
    }
    not_found(
        "bittrex-api-key",
        &format!("BITTREX_API_KEY={}", random(3, 40, HEX)),
    );
    not_found("bittrex-api-key", &format!("MD5={}", random(4, 32, HEX)));
}

#[test]
fn finicity() {
    let key = random(1, 32, HEX);
    found_in_contexts("finicity-app-key", &["finicity", "app", "key"], &key);
    only("finicity-app-key", &format!("-H 'Finicity-App-Key: {key}'"));
    not_found("finicity-app-key", &format!("FINICITY_CUSTOMER_HASH={key}"));

    let secret = format!("{}6", random(2, 19, ALNUM));
    found_in_contexts(
        "finicity-partner-secret",
        &["finicity", "partner", "secret"],
        &secret,
    );
    not_found(
        "finicity-partner-secret",
        "FINICITY_PARTNER_SECRET=yourpartnersecretab",
    );
    not_found(
        "finicity-partner-secret",
        &format!("PARTNER_SECRET={secret}"),
    );
}

#[test]
fn adyen() {
    let key = format!(
        "{}{}==-{}=-{}",
        p(&["AQ", "E"]),
        random(1, 90, BASE64),
        random(2, 43, BASE64),
        random(3, 16, b"ABCDEFabcdef0123456789;%={}!")
    );
    only("adyen-api-key", &format!("ADYEN_API_KEY=\"{key}\""));
    only("adyen-api-key", &format!("adyen_api_key: {key}\n"));
    only(
        "adyen-api-key",
        &format!("adyen.client.xapikey = '{}'", &key[..key.len() - 17]),
    );
    not_found("adyen-api-key", &format!("OTHER_API_KEY=\"{key}\""));
    not_found("adyen-api-key", "ADYEN_API_KEY=\"AQE...your-key-here\"");
}

#[test]
fn paypal() {
    let secret = format!("E{}3", random(1, 78, URLSAFE));
    found_in_contexts(
        "paypal-client-secret",
        &["paypal", "client", "secret"],
        &secret,
    );
    not_found(
        "paypal-client-secret",
        &format!("PAYPAL_CLIENT_ID=A{}3", random(2, 78, URLSAFE)),
    );
    not_found(
        "paypal-client-secret",
        &format!("PAYPAL_CLIENT_SECRET={}", random(3, 40, URLSAFE)),
    );
}

#[test]
fn razorpay() {
    let id = format!("{}{}", p(&["rzp", "_test_"]), random(1, 14, ALNUM));
    only("razorpay-key-id", &format!("RAZORPAY_KEY_ID={id}"));
    only("razorpay-key-id", &format!("key: \"{id}\","));
    not_found(
        "razorpay-key-id",
        &format!("rzp_live_{}", random(2, 8, ALNUM)),
    );
    not_found("razorpay-key-id", &format!("rzp_live_{}", "X".repeat(14)));

    let secret = format!("{}2", random(3, 23, ALNUM));
    found_in_contexts(
        "razorpay-key-secret",
        &["razorpay", "key", "secret"],
        &secret,
    );
    not_found("razorpay-key-secret", &format!("KEY_SECRET={secret}"));
    // Next to a key id, with no name: the pair reads as one.
    let pair = |text: &str| -> Vec<(String, String)> {
        let mut found: Vec<(String, String)> = scanner()
            .scan("t", text.as_bytes(), None)
            .into_iter()
            .map(|f| (f.rule, f.description))
            .collect();
        found.sort();
        found
    };
    let found = pair(&format!(
        "client = razorpay.Client(auth=(\"{id}\", \"{secret}\"))"
    ));
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].0, "razorpay-key-id");
    assert_eq!(found[1].0, "razorpay-key-secret");
    assert!(found[1].1.contains("paired with rzp_test_…"), "{found:?}");
    // Far from a key id, an unnamed 24-character value is not one.
    assert_eq!(
        pair(&format!("id = \"{id}\"\n\n\n\n\nx = \"{secret}\"\n")).len(),
        1
    );
}

/// Names that say the provider and any credential word (key, token, secret, pass, auth,
/// cred): each value is its own shape's rule's, found once.
#[test]
fn provider_name_and_any_credential_word() {
    let words: [&[&str]; 5] = [
        &["api", "key"],
        &["token"],
        &["key"],
        &["secret"],
        &["auth", "creds"],
    ];
    let cases: Vec<(&str, &str, String)> = vec![
        ("discord-client-id", "discord", number(100, 18)),
        (
            "discord-client-secret",
            "discord",
            format!("{}7", random(101, 31, URLSAFE)),
        ),
        (
            "mattermost-token",
            "mattermost",
            format!("{}4", random(102, 25, LOWER_DIGITS)),
        ),
        ("facebook-app-secret", "facebook", random(103, 32, HEX)),
        (
            "twitter-api-key",
            "twitter",
            format!("{}3", random(104, 24, ALNUM)),
        ),
        (
            "linkedin-client-secret",
            "linkedin",
            format!("{}7", random(105, 15, ALNUM)),
        ),
        (
            "linkedin-client-id",
            "linkedin",
            format!("86{}", random(106, 12, LOWER_DIGITS)),
        ),
        (
            "twitch-token",
            "twitch",
            format!("{}9", random(107, 29, LOWER_DIGITS)),
        ),
        ("sendbird-api-token", "sendbird", random(108, 40, HEX)),
        ("sendbird-app-id", "sendbird", uuid(109)),
        ("plaid-secret", "plaid", random(110, 30, HEX)),
        ("plaid-client-id", "plaid", random(111, 24, HEX)),
        (
            "flutterwave-encryption-key",
            "flutterwave",
            format!("{}4", random(112, 23, ALNUM)),
        ),
        ("braintree-private-key", "braintree", random(113, 32, HEX)),
        (
            "coinbase-api-secret",
            "coinbase",
            format!("{}8", random(114, 31, ALNUM)),
        ),
        (
            "coinbase-api-key",
            "coinbase",
            format!("{}1", random(115, 15, ALNUM)),
        ),
        (
            "kraken-private-key",
            "kraken",
            format!("{}==", random(116, 86, BASE64)),
        ),
        ("kraken-api-key", "kraken", random(117, 56, BASE64)),
        ("kucoin-api-secret", "kucoin", uuid(118)),
        ("kucoin-api-key", "kucoin", random(119, 24, HEX)),
        ("finicity-app-key", "finicity", random(120, 32, HEX)),
        (
            "finicity-partner-secret",
            "finicity",
            format!("{}6", random(121, 19, ALNUM)),
        ),
        (
            "paypal-client-secret",
            "paypal",
            format!("E{}3", random(122, 78, URLSAFE)),
        ),
        (
            "razorpay-key-secret",
            "razorpay",
            format!("{}2", random(123, 23, ALNUM)),
        ),
    ];
    for (rule, provider, value) in &cases {
        for tail in words {
            // 12 to 15 characters under a secret name: no LinkedIn shape (see below).
            if *rule == "linkedin-client-id" && tail == ["secret"] {
                continue;
            }
            let mut name = vec![*provider];
            name.extend_from_slice(tail);
            found_in_contexts(rule, &name, value);
        }
    }
    // A bare id name is no credential's; the provider's name alone finds nothing.
    let snowflake = number(130, 19);
    for name in [
        "GUILD_ID",
        "CHANNEL_ID",
        "USER_ID",
        "WEBHOOK_ID",
        "SERVER",
        "AUTHOR_ID",
    ] {
        not_found("discord-client-id", &format!("DISCORD_{name}={snowflake}"));
    }
    not_found(
        "discord-client-id",
        &format!("DISCORD_TOKEN_GUILD_ID={snowflake}"),
    );
    not_found(
        "sendbird-app-id",
        &format!("SENDBIRD_USER_ID={}", uuid(131)),
    );
    not_found(
        "sendbird-app-id",
        &format!("SENDBIRD_CHANNEL={}", uuid(131)),
    );
    not_found(
        "plaid-client-id",
        &format!("PLAID_ORG_ID={}", random(132, 24, HEX)),
    );
    not_found(
        "kucoin-api-secret",
        &format!("KUCOIN_ORDER_ID={}", uuid(133)),
    );
    not_found(
        "coinbase-api-key",
        &format!("COINBASE_PROJECT_ID={}", uuid(134)),
    );
    // The shape check stays: a credential word with the wrong shape is not found.
    not_found(
        "kucoin-api-key",
        &format!("KUCOIN_TOKEN={}", random(135, 24, ALNUM)),
    );
    not_found(
        "facebook-app-secret",
        &format!("FACEBOOK_TOKEN={}", "0".repeat(32)),
    );
}

/// Where two shapes of one provider meet under one name, one rule reports the value.
#[test]
fn one_finding_per_value() {
    // LinkedIn: 16 characters under a key word are the legacy secret; under client id, the id.
    let sixteen = format!("{}7", random(1, 15, LOWER_DIGITS));
    only(
        "linkedin-client-secret",
        &format!("LINKEDIN_API_KEY={sixteen}"),
    );
    only(
        "linkedin-client-id",
        &format!("LINKEDIN_OAUTH_CLIENT_ID={sixteen}"),
    );
    let fourteen = format!("86{}", random(2, 12, LOWER_DIGITS));
    only(
        "linkedin-client-id",
        &format!("LINKEDIN_API_KEY={fourteen}"),
    );
    not_found("linkedin-client-id", &format!("LINKEDIN_SECRET={fourteen}"));
    // Twitch: client ids and secrets share a shape.
    let thirty = format!("{}2", random(3, 29, LOWER_DIGITS));
    only(
        "twitch-client-id",
        &format!("TWITCH_OAUTH_CLIENT_ID={thirty}"),
    );
    only("twitch-token", &format!("TWITCH_API_KEY={thirty}"));
    // KuCoin: a name that says pass is the passphrase's alone.
    only(
        "kucoin-api-passphrase",
        &format!("KUCOIN_API_PASSPHRASE={}", uuid(4)),
    );
    only(
        "kucoin-api-passphrase",
        &format!("KUCOIN_PASSWORD={}", random(5, 24, HEX)),
    );
    // PayPal client ids, Braintree public keys and Facebook client tokens are public.
    not_found(
        "paypal-client-secret",
        &format!("PAYPAL_OAUTH_CLIENT_ID=A{}3", random(6, 78, URLSAFE)),
    );
    not_found(
        "braintree-private-key",
        &format!("BRAINTREE_PUBLIC_KEY={}", random(7, 32, HEX)),
    );
    not_found(
        "facebook-app-secret",
        &format!("FACEBOOK_CLIENT_TOKEN={}", random(8, 32, HEX)),
    );
}

#[test]
fn facebook_app_access_tokens() {
    let app = number(1, 16);
    let secret = random(2, 32, HEX);
    let plain = format!("{app}|{secret}");
    found_in_contexts(
        "facebook-app-access-token",
        &["facebook", "access", "token"],
        &plain,
    );
    found_in_contexts(
        "facebook-app-access-token",
        &["facebook", "api", "key"],
        &plain,
    );
    only(
        "facebook-app-access-token",
        &format!("FB_APP_TOKEN=\"{}|{secret}\"", number(3, 15)),
    );
    only(
        "facebook-app-access-token",
        &format!("requests.get(\"https://graph.facebook.com/debug_token\", params={{\"access_token\": \"{plain}\"}})"),
    );
    // URL-encoded, anywhere (%7C or %7c); the token /oauth/access_token returns.
    for bar in ["%7C", "%7c"] {
        only(
            "facebook-app-access-token",
            &format!("curl 'https://graph.example.net/v19.0/app?access_token={app}{bar}{secret}'"),
        );
    }
    let issued = format!("{}|{}", number(4, 15), random(5, 27, URLSAFE));
    only(
        "facebook-app-access-token",
        &format!("FACEBOOK_APP_TOKEN={issued}"),
    );
    // Plain "|" without a Facebook name; a client access token; placeholders; wrong lengths.
    not_found("facebook-app-access-token", &format!("row = \"{plain}\""));
    not_found(
        "facebook-app-access-token",
        &format!("FACEBOOK_CLIENT_TOKEN={app}|{secret}"),
    );
    not_found(
        "facebook-app-access-token",
        &format!("FACEBOOK_ACCESS_TOKEN={app}|{}", "x".repeat(27)),
    );
    not_found(
        "facebook-app-access-token",
        &format!("FACEBOOK_ACCESS_TOKEN={}|{secret}", number(6, 12)),
    );
    not_found(
        "facebook-app-access-token",
        &format!(
            "FACEBOOK_ACCESS_TOKEN={app}|{}",
            random(7, 35, LOWER_DIGITS)
        ),
    );
    not_found(
        "facebook-app-access-token",
        "FACEBOOK_ACCESS_TOKEN={app_id}|{app_secret}",
    );
}

#[test]
fn telegram_long_bot_ids_and_xml() {
    // Bot ids up to 52 bits (16 digits), under a Telegram name; over lines in XML.
    let token = format!("{}:{}", number(1, 13), random(2, 35, URLSAFE));
    for text in contexts(&["telegram", "token"], &token) {
        only("telegram-bot-token", &text);
    }
    let aa = format!("{}:AA{}", number(3, 16), random(4, 33, URLSAFE));
    only("telegram-bot-token", &format!("BOT_TOKEN={aa}"));
    not_found(
        "telegram-bot-token",
        &format!(
            "TELEGRAM_TOKEN={}:{}",
            number(5, 17),
            random(6, 35, URLSAFE)
        ),
    );
}

#[test]
fn flutterwave_test_encryption_key_with_a_dash() {
    let key = format!("{}-{}", p(&["FLW", "SECK_TEST"]), random(1, 12, HEX));
    only(
        "flutterwave-encryption-key",
        &format!("Authorization: Bearer {key}"),
    );
    not_found(
        "flutterwave-encryption-key",
        &format!("{}-{}", p(&["FLW", "SECK_TEST"]), "0".repeat(12)),
    );
}

#[test]
fn telegraf_and_short_bot_ids() {
    // `new Telegraf("<token>")` names the provider; the secret half need not start "AA".
    let token = format!("{}:A{}", number(1, 8), random(2, 34, URLSAFE));
    only(
        "telegram-bot-token",
        &format!("const bot = new Telegraf(\"{token}\")"),
    );
    only(
        "telegram-bot-token",
        &format!("const bot = new Telegraf(process.env.BOT_TOKEN || '{token}');"),
    );
    not_found(
        "telegram-bot-token",
        &format!("const bot = new Bot(\"{token}\")"),
    );
    // Five-digit bot ids under a Telegram name; four digits are not one.
    let short = format!("{}:{}", number(3, 5), random(4, 35, URLSAFE));
    only(
        "telegram-bot-token",
        &format!("telegram_api_token = \"{short}\""),
    );
    not_found(
        "telegram-bot-token",
        &format!(
            "telegram_api_token = \"{}:{}\"",
            number(5, 4),
            random(6, 35, URLSAFE)
        ),
    );
}

#[test]
fn gocardless_in_every_context() {
    for env in ["live", "sandbox"] {
        let token = format!("{env}_{}", random(7, 40, URLSAFE));
        // Includes the XML element with the value on the next line.
        found_in_contexts(
            "gocardless-access-token",
            &["gocardless", "access", "token"],
            &token,
        );
        not_found(
            "gocardless-access-token",
            &format!("<config>\n  <accessToken>\n    {token}\n  </accessToken>\n</config>"),
        );
    }
}

#[test]
fn braintree_tokenization_key() {
    for (seed, env) in [(1, "sandbox"), (4, "production")] {
        let key = format!(
            "{env}_{}_{}",
            random(seed, 8, LOWER_DIGITS),
            random(seed + 1, 16, LOWER_DIGITS)
        );
        found_in_contexts(
            "braintree-tokenization-key",
            &["braintree", "tokenization", "key"],
            &key,
        );
        found_in_contexts("braintree-tokenization-key", &["braintree", "token"], &key);
        only(
            "braintree-tokenization-key",
            &format!(
                "braintree.dropin.create({{\n  authorization: '{key}',\n  selector: '#dropin'\n}});"
            ),
        );
        only(
            "braintree-tokenization-key",
            &format!("BraintreeClient(context, \"{key}\")"),
        );
        // No name on the line, another service's name, a placeholder, the wrong shape.
        not_found("braintree-tokenization-key", &key);
        not_found("braintree-tokenization-key", &format!("SANDBOX_ID={key}"));
    }
    not_found(
        "braintree-tokenization-key",
        &format!(
            "BRAINTREE_TOKENIZATION_KEY=sandbox_{}_{}",
            "x".repeat(8),
            "x".repeat(16)
        ),
    );
    not_found(
        "braintree-tokenization-key",
        "BRAINTREE_TOKENIZATION_KEY=sandbox_settings_productioncluster",
    );
    not_found(
        "braintree-tokenization-key",
        &format!(
            "BRAINTREE_TOKENIZATION_KEY=development_{}_{}",
            random(7, 8, LOWER_DIGITS),
            random(8, 16, LOWER_DIGITS)
        ),
    );
}

#[test]
fn adyen_client_key() {
    for (seed, env) in [(1, "test"), (2, "live")] {
        let key = format!("{env}_{}", random(seed, 32, UPPER_DIGITS));
        found_in_contexts("adyen-client-key", &["adyen", "client", "key"], &key);
        found_in_contexts("adyen-client-key", &["adyen", "token"], &key);
        // The Drop-in configuration, where Adyen is named lines above.
        only(
            "adyen-client-key",
            &format!("  environment: \"{env}\",\n  clientKey: \"{key}\",\n"),
        );
        only("adyen-client-key", &format!("'client_key' => '{key}',"));
        // Lower case and 34 characters under an Adyen name.
        let lower = format!("{env}_{}", random(seed + 10, 34, LOWER_DIGITS));
        only("adyen-client-key", &format!("ADYEN_CLIENT_KEY={lower}"));
        // Not under a clientKey name without Adyen's shape (capitals and digits, 32).
        not_found("adyen-client-key", &format!("clientKey: \"{lower}\""));
        not_found("adyen-client-key", &format!("CLIENT_TOKEN={key}"));
    }
    // Another service's client key (Toss: test_ck_…), placeholders, the environment.
    not_found(
        "adyen-client-key",
        &format!("clientKey: \"test_ck_{}\"", random(20, 24, ALNUM)),
    );
    not_found(
        "adyen-client-key",
        &format!("ADYEN_CLIENT_KEY=test_{}", "X".repeat(32)),
    );
    not_found(
        "adyen-client-key",
        "ADYEN_CLIENT_KEY=test_your_client_key_here",
    );
    not_found("adyen-client-key", "ADYEN_ENVIRONMENT=test");
}

#[test]
fn chargebee_api_key() {
    for (seed, env) in [(1, "test"), (2, "live")] {
        let key = format!("{env}_{}", random(seed, 32, ALNUM));
        found_in_contexts("chargebee-api-key", &["chargebee", "api", "key"], &key);
        found_in_contexts("chargebee-api-key", &["chargebee", "token"], &key);
        only(
            "chargebee-api-key",
            &format!("chargebee.configure({{site: \"acme-test\", api_key: \"{key}\"}})"),
        );
        let lower = format!("{env}_{}", random(seed + 10, 32, LOWER_DIGITS));
        only(
            "chargebee-api-key",
            &format!("chargebeeToken := \"{lower}\""),
        );
        // Publishable keys are for the browser; another service's test_ key.
        not_found(
            "chargebee-api-key",
            &format!("CHARGEBEE_PUBLISHABLE_KEY={key}"),
        );
        not_found("chargebee-api-key", &format!("OTHER_API_KEY={key}"));
    }
    not_found(
        "chargebee-api-key",
        &format!("CHARGEBEE_API_KEY=test_{}", "x".repeat(32)),
    );
    not_found(
        "chargebee-api-key",
        "CHARGEBEE_API_KEY=test_your_chargebee_api_key",
    );
}
