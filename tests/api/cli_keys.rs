//! The key-management commands of the real binary, as an operator runs them:
//! `keygate keys list|add|remove|enable|disable|test` and
//! `keygate rotate-encryption-key`. Each test checks what the operator sees
//! (stdout, stderr, exit status), what is in the database afterwards, and
//! that no planted key ever appears in anything the binary printed.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use keygate::crypto::{KeyCipher, MasterKey};
use keygate::scrub::mask_key;
use keygate::store::Store;
use keygate::vault::Vault;
use secrecy::SecretString;
use sqlx::SqlitePool;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::helpers::{
    Canned, FakeUpstream, MASTER_KEY, OTHER_MASTER_KEY, TestEnv, planted_key, planted_openai_key,
    secret_core,
};

const BINARY: &str = env!("CARGO_BIN_EXE_keygate");

/// What one run of the binary left behind.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// An operator at a shell: runs the binary with exactly `env`'s variables
/// in the data folder, and keeps everything it printed.
struct Operator {
    env: TestEnv,
    upstream: FakeUpstream,
    transcript: String,
}

impl Operator {
    async fn new() -> Self {
        let upstream = FakeUpstream::start().await;
        let env = TestEnv::new(&upstream, &[])
            .set("OPENAI_BASE_URL", &upstream.url)
            .set("KEY_TEST_TIMEOUT_SECS", "5")
            // Every log line is printed, so the leak checks see them all.
            .set("RUST_LOG", "trace");
        Self {
            env,
            upstream,
            transcript: String::new(),
        }
    }

    fn set(&mut self, name: &str, value: &str) {
        self.env.vars.insert(name.to_string(), value.to_string());
    }

    async fn run(&mut self, args: &[&str]) -> Run {
        self.run_with_stdin(args, "").await
    }

    async fn run_with_stdin(&mut self, args: &[&str], stdin: &str) -> Run {
        let mut child = Command::new(BINARY)
            .args(args)
            .env_clear()
            .envs(&self.env.vars)
            .current_dir(self.env.data_dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("keygate exits")
            .unwrap();
        let run = Run {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        // Only what the binary printed: the arguments may hold a key.
        self.transcript.push_str(&run.stdout);
        self.transcript.push_str(&run.stderr);
        run
    }

    /// `keys add`, which must succeed; returns the new id.
    async fn add(&mut self, provider: &str, key: &str, extra: &[&str]) -> String {
        let mut args = vec!["keys", "add", "--provider", provider, "--key", key];
        args.extend_from_slice(extra);
        let run = self.run(&args).await;
        assert!(run.ok, "{}{}", run.stdout, run.stderr);
        run.stdout.split_whitespace().nth(1).unwrap().to_string()
    }

    fn assert_never_shown(&self, keys: &[&str]) {
        for key in keys {
            assert!(
                !self.transcript.contains(secret_core(key)),
                "a planted key was printed:\n{}",
                self.transcript
            );
        }
    }

    async fn pool(&self) -> SqlitePool {
        SqlitePool::connect(&self.env.vars["DATABASE_URL"])
            .await
            .unwrap()
    }

    /// (id, provider, name, weight, enabled, sealed_key), oldest first.
    async fn rows(&self) -> Vec<(String, String, Option<String>, i64, bool, String)> {
        let pool = self.pool().await;
        let rows = sqlx::query_as(
            "SELECT id, provider, name, weight, enabled, sealed_key FROM api_keys ORDER BY rowid",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        rows
    }

    async fn sealed(&self) -> Vec<String> {
        self.rows().await.into_iter().map(|row| row.5).collect()
    }

    async fn key_state(&self, id: &str) -> Option<String> {
        let pool = self.pool().await;
        let data = sqlx::query_scalar("SELECT data FROM key_state WHERE key_id = ?")
            .bind(id)
            .fetch_optional(&pool)
            .await
            .unwrap();
        pool.close().await;
        data
    }
}

fn masked(key: &str) -> String {
    mask_key(&SecretString::from(key))
}

/// The stdout line that starts with `id`.
fn line_of<'a>(stdout: &'a str, id: &str) -> &'a str {
    stdout
        .lines()
        .find(|line| line.starts_with(id))
        .unwrap_or_else(|| panic!("no line for {id} in:\n{stdout}"))
}

#[tokio::test]
async fn added_keys_are_listed_masked_and_duplicates_or_bad_keys_refused() {
    let mut op = Operator::new().await;
    let (named, piped) = (planted_key("add-a"), planted_key("add-b"));
    let named_id = op
        .add("anthropic", &named, &["--label", "team-a", "--weight", "5"])
        .await;
    // `--key -` reads the key from stdin, out of shell history.
    let run = op
        .run_with_stdin(
            &["keys", "add", "--provider", "anthropic", "--key", "-"],
            &format!("{piped}\n"),
        )
        .await;
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("added key_") && run.stdout.contains(&masked(&piped)),
        "{}",
        run.stdout
    );
    let piped_id = run.stdout.split_whitespace().nth(1).unwrap().to_string();

    let list = op.run(&["keys", "list"]).await;
    assert!(list.ok, "{}", list.stderr);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "a header and two keys, no logs:\n{}",
        list.stdout
    );
    assert!(lines[0].starts_with("ID") && lines[0].contains("HEALTH"));
    let cells: Vec<&str> = line_of(&list.stdout, &named_id)
        .split_whitespace()
        .collect();
    assert_eq!(
        cells,
        [
            &named_id,
            "anthropic",
            "team-a",
            &masked(&named),
            "5",
            "enabled",
            "-"
        ]
    );
    let cells: Vec<&str> = line_of(&list.stdout, &piped_id)
        .split_whitespace()
        .collect();
    assert_eq!(
        cells[2],
        masked(&piped),
        "no name: the label is the masked form"
    );
    assert_eq!(cells[3..6], [masked(&piped).as_str(), "1", "enabled"]);
    let list = op.run(&["keys", "list", "--provider", "openai"]).await;
    assert!(list.ok && list.stdout.is_empty(), "{}", list.stdout);

    let duplicate = op
        .run(&[
            "keys",
            "add",
            "--provider",
            "anthropic",
            "--key",
            &named,
            "--label",
            "again",
        ])
        .await;
    assert!(!duplicate.ok);
    assert!(
        duplicate
            .stderr
            .contains("this key is already stored for anthropic"),
        "{}",
        duplicate.stderr
    );
    let spaced = format!("{} {}", planted_key("bad"), "tail");
    for bad in [spaced.as_str(), "", "  "] {
        let run = op
            .run(&["keys", "add", "--provider", "anthropic", "--key", bad])
            .await;
        assert!(!run.ok, "{bad:?} was accepted");
        assert!(run.stderr.contains("invalid --key"), "{}", run.stderr);
    }
    let zero = op
        .run(&[
            "keys",
            "add",
            "--provider",
            "anthropic",
            "--key",
            &planted_key("w"),
            "--weight",
            "0",
        ])
        .await;
    assert!(!zero.ok);

    let rows = op.rows().await;
    assert_eq!(rows.len(), 2, "refused adds stored nothing");
    assert_eq!(rows[0].2.as_deref(), Some("team-a"));
    assert_eq!((rows[0].3, rows[0].4), (5, true));
    assert_eq!((rows[1].2.as_deref(), rows[1].3), (None, 1));
    assert!(rows.iter().all(|row| !row.5.contains(secret_core(&named))));
    op.assert_never_shown(&[&named, &piped, &spaced, &planted_key("w")]);
}

#[tokio::test]
async fn switches_and_removal_change_the_stored_row() {
    let mut op = Operator::new().await;
    let (key, other) = (planted_key("sw-a"), planted_openai_key("sw-b"));
    let id = op.add("anthropic", &key, &[]).await;
    let openai_id = op.add("openai", &other, &[]).await;

    // Without --provider, the key's provider is found by its id.
    let run = op.run(&["keys", "disable", &id]).await;
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(
        run.stdout.trim(),
        format!("disabled {id} (anthropic, {})", masked(&key))
    );
    assert!(!op.rows().await[0].4);
    let list = op.run(&["keys", "list"]).await;
    assert!(line_of(&list.stdout, &id).contains("disabled"));
    let run = op
        .run(&["keys", "enable", &id, "--provider", "anthropic"])
        .await;
    assert!(run.ok, "{}", run.stderr);
    assert!(op.rows().await[0].4);

    // The right id under the wrong provider is not found, and nothing changes.
    let run = op
        .run(&["keys", "disable", &openai_id, "--provider", "anthropic"])
        .await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains(&format!(
            "no stored key has the id {openai_id} for anthropic"
        )),
        "{}",
        run.stderr
    );
    assert!(op.rows().await[1].4);

    let run = op.run(&["keys", "remove", &openai_id]).await;
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), format!("removed {openai_id} (openai)"));
    let rows = op.rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, id);
    for command in ["remove", "enable", "disable"] {
        let run = op.run(&["keys", command, &openai_id]).await;
        assert!(!run.ok, "{command} of a removed key succeeded");
        assert!(
            run.stderr.contains("no stored key has the id"),
            "{}",
            run.stderr
        );
    }
    // A key pasted where the id belongs is not printed back.
    let run = op.run(&["keys", "remove", &key]).await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains("no stored key has that id"),
        "{}",
        run.stderr
    );
    assert_eq!(op.rows().await.len(), 1);
    op.assert_never_shown(&[&key, &other]);
}

#[tokio::test]
async fn key_test_reports_each_key_and_records_its_health() {
    let mut op = Operator::new().await;
    let (good, bad) = (planted_key("t-good"), planted_key("t-bad"));
    let good_id = op.add("anthropic", &good, &[]).await;
    let bad_id = op.add("anthropic", &bad, &["--label", "team-b"]).await;
    op.upstream.queue(
        &bad,
        [Canned::error(
            401,
            "authentication_error",
            "invalid x-api-key",
        )],
    );

    let run = op.run(&["keys", "test"]).await;
    assert!(!run.ok, "a rejected key fails the command");
    assert_eq!(
        line_of(&run.stdout, &good_id),
        format!("{good_id}  {}  ok", masked(&good))
    );
    assert_eq!(
        line_of(&run.stdout, &bad_id),
        format!("{bad_id}  team-b  invalid (401, invalid x-api-key)")
    );
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
    assert!(
        run.stderr.contains("testing anthropic keys: 2/2"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("1 of 2 keys did not pass the check"),
        "{}",
        run.stderr
    );
    let state = op.key_state(&bad_id).await.unwrap();
    assert!(state.contains(r#""state":"invalid""#), "{state}");
    assert!(state.contains("invalid x-api-key"), "{state}");
    let state = op.key_state(&good_id).await.unwrap();
    assert!(state.contains(r#""state":"active""#), "{state}");
    let list = op.run(&["keys", "list"]).await;
    assert!(line_of(&list.stdout, &bad_id).ends_with("invalid: invalid x-api-key"));

    // The upstream accepts it now: a check of that key alone restores it.
    let run = op.run(&["keys", "test", "--key", &bad_id]).await;
    assert!(run.ok, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout.trim(), format!("{bad_id}  team-b  ok"));
    let state = op.key_state(&bad_id).await.unwrap();
    assert!(state.contains(r#""state":"active""#), "{state}");
    assert_eq!(op.upstream.calls_with(&bad), 2);
    assert_eq!(op.upstream.calls_with(&good), 1);
    let list = op.run(&["keys", "list"]).await;
    assert!(line_of(&list.stdout, &bad_id).ends_with("active"));

    let run = op.run(&["keys", "test", "--key", "key_000000000000"]).await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains("no stored key has the id"),
        "{}",
        run.stderr
    );
    op.assert_never_shown(&[&good, &bad]);
}

#[tokio::test]
async fn an_upstream_echoing_the_key_does_not_leak_it_through_keys_test() {
    let mut op = Operator::new().await;
    let key = planted_openai_key("echo");
    let id = op.add("openai", &key, &[]).await;
    op.upstream.always(
        &key,
        Canned::openai_error(
            401,
            "invalid_request_error",
            Some("invalid_api_key"),
            &format!("Incorrect API key provided: {key}."),
        ),
    );
    let run = op.run(&["keys", "test", "--provider", "openai"]).await;
    assert!(!run.ok);
    assert!(
        line_of(&run.stdout, &id).contains("invalid (401"),
        "{}",
        run.stdout
    );
    assert!(!op.key_state(&id).await.unwrap().contains(secret_core(&key)));
    op.assert_never_shown(&[&key]);
}

#[tokio::test]
async fn rotation_under_encryption_key_reseals_everything_and_says_to_change_it() {
    let mut op = Operator::new().await;
    let keys = [
        planted_key("r-a"),
        planted_key("r-b"),
        planted_openai_key("r-c"),
    ];
    op.add("anthropic", &keys[0], &[]).await;
    op.add("anthropic", &keys[1], &[]).await;
    op.add("openai", &keys[2], &[]).await;
    let before = op.sealed().await;

    let run = op
        .run(&["rotate-encryption-key", "--new-key", MASTER_KEY])
        .await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains("is the current encryption key"),
        "{}",
        run.stderr
    );
    let run = op
        .run(&["rotate-encryption-key", "--new-key", "0xabc"])
        .await;
    assert!(!run.ok);
    assert!(run.stderr.contains("invalid --new-key"), "{}", run.stderr);
    assert_eq!(
        op.sealed().await,
        before,
        "refused rotations change nothing"
    );

    let run = op
        .run(&["rotate-encryption-key", "--new-key", OTHER_MASTER_KEY])
        .await;
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stdout.contains("re-sealed 3 stored keys"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("ENCRYPTION_KEY must now be set to the new key"),
        "{}",
        run.stdout
    );
    let after = op.sealed().await;
    assert!(before.iter().zip(&after).all(|(old, new)| old != new));

    // The old key opens nothing any more...
    for args in [&["keys", "list"][..], &["seed"]] {
        let run = op.run(args).await;
        assert!(!run.ok, "{args:?} ran with the old key");
        assert!(run.stderr.contains("cannot be decrypted"), "{}", run.stderr);
    }
    // ...and the new one opens everything, as the upstream confirms.
    op.set("ENCRYPTION_KEY", OTHER_MASTER_KEY);
    let list = op.run(&["keys", "list"]).await;
    assert!(list.ok, "{}", list.stderr);
    assert_eq!(list.stdout.lines().count(), 4);
    let run = op.run(&["keys", "test"]).await;
    assert!(run.ok, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout.lines().filter(|l| l.ends_with("  ok")).count(),
        3
    );
    for key in &keys {
        assert_eq!(
            op.upstream.calls_with(key),
            1,
            "the upstream got the real key"
        );
    }
    assert!(op.run(&["seed"]).await.ok);
    op.assert_never_shown(&[&keys[0], &keys[1], &keys[2]]);
}

#[tokio::test]
async fn rotation_under_the_key_file_rewrites_it_privately() {
    let mut op = Operator::new().await;
    op.env.vars.remove("ENCRYPTION_KEY");
    let key = planted_key("file");
    op.add("anthropic", &key, &[]).await;
    let key_file = op.env.data_dir.path().join("encryption.key");
    let old_key = std::fs::read_to_string(&key_file).unwrap();

    let run = op
        .run_with_stdin(
            &["rotate-encryption-key", "--new-key", "-"],
            &format!("{OTHER_MASTER_KEY}\n"),
        )
        .await;
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stdout.contains("re-sealed 1 stored key "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("wrote the new key to"),
        "{}",
        run.stdout
    );
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap().trim(),
        OTHER_MASTER_KEY
    );
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!op.env.data_dir.path().join("encryption.key.new").exists());

    // A plain restart reads the new file and opens the key.
    let run = op.run(&["keys", "test"]).await;
    assert!(run.ok, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.trim_end().ends_with("ok"), "{}", run.stdout);
    assert!(op.run(&["seed"]).await.ok);
    op.set("ENCRYPTION_KEY", old_key.trim());
    let run = op.run(&["keys", "list"]).await;
    assert!(
        !run.ok && run.stderr.contains("cannot be decrypted"),
        "{}",
        run.stderr
    );
    op.assert_never_shown(&[&key]);
}

#[tokio::test]
async fn a_tampered_row_fails_the_rotation_and_changes_nothing() {
    let mut op = Operator::new().await;
    let keys = [planted_key("x-a"), planted_key("x-b"), planted_key("x-c")];
    for key in &keys {
        op.add("anthropic", key, &[]).await;
    }
    // Flip one hex digit of the last row's ciphertext (fourth field): the
    // rows before it would be re-sealed first if the rotation were not one
    // transaction.
    let (id, sealed) = {
        let rows = op.rows().await;
        (rows[2].0.clone(), rows[2].5.clone())
    };
    let mut fields: Vec<String> = sealed.split(':').map(String::from).collect();
    let flipped = if fields[3].starts_with('0') { "1" } else { "0" };
    fields[3].replace_range(0..1, flipped);
    let pool = op.pool().await;
    sqlx::query("UPDATE api_keys SET sealed_key = ? WHERE id = ?")
        .bind(fields.join(":"))
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let before = op.sealed().await;

    let run = op
        .run(&["rotate-encryption-key", "--new-key", OTHER_MASTER_KEY])
        .await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains("failed their integrity check"),
        "{}",
        run.stderr
    );
    assert_eq!(op.sealed().await, before, "no row was re-sealed");

    // The command refuses before rotating; the rotation itself, run on the
    // tampered store, re-seals two rows and then rolls them back.
    let store = Store::connect(&op.env.vars["DATABASE_URL"]).await.unwrap();
    let cipher = |hex: &str| KeyCipher::new(&MasterKey::from_hex(hex).unwrap());
    let vault = Vault::new(store.clone(), cipher(MASTER_KEY));
    assert!(vault.rotate(&cipher(OTHER_MASTER_KEY)).await.is_err());
    store.close().await;
    assert_eq!(
        op.sealed().await,
        before,
        "the failed transaction left no trace"
    );
    op.assert_never_shown(&[&keys[0], &keys[1], &keys[2]]);
}

#[tokio::test]
async fn search_key_checks_show_serpapi_headroom_and_warn_before_a_google_query() {
    use crate::fake_search::{ACCOUNT, FakeSearch, GOOGLE, SERPAPI};
    use crate::search_app::{google_key, serp_key};
    let mut op = Operator::new().await;
    let fake = FakeSearch::start().await;
    op.set("SERPAPI_BASE_URL", &fake.url);
    op.set("GOOGLE_CSE_BASE_URL", &fake.url);
    op.set("GOOGLE_CSE_CX", "abc123");
    let (serp, google) = (serp_key("cli"), google_key("cli"));
    let serp_id = op.add("serpapi", &serp, &[]).await;
    let google_id = op.add("google_cse", &google, &[]).await;

    let run = op.run(&["keys", "test", "--provider", "serpapi"]).await;
    assert!(run.ok, "{}{}", run.stdout, run.stderr);
    assert!(
        line_of(&run.stdout, &serp_id)
            .ends_with("ok  (left: 95 of 100 this month, 45 of 50 this window)"),
        "{}",
        run.stdout
    );
    assert_eq!(fake.calls(ACCOUNT, &serp), 1);
    assert_eq!(
        fake.calls(SERPAPI, &serp),
        0,
        "the SerpApi check spends no search"
    );
    assert!(!run.stderr.contains("daily quota"));

    let run = op.run(&["keys", "test", "--provider", "google_cse"]).await;
    assert!(run.ok, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("counts against its project's daily quota"),
        "{}",
        run.stderr
    );
    assert!(line_of(&run.stdout, &google_id).ends_with("ok"));
    assert_eq!(fake.calls(GOOGLE, &google), 1);
    for key in [&serp, &google] {
        assert!(
            !op.transcript.contains(&key[4..key.len() - 4]),
            "{}",
            op.transcript
        );
    }
}

#[tokio::test]
async fn keys_add_from_a_file_stores_thousands_with_progress_and_skips_stored_ones() {
    let mut op = Operator::new().await;
    let keys: Vec<String> = (0..5000).map(|i| planted_key(&format!("f{i}"))).collect();
    let file = op.env.data_dir.path().join("keys.txt");
    std::fs::write(&file, format!("# imported pool\n{}\n", keys.join("\n"))).unwrap();
    let path = file.display().to_string();
    let args = [
        "keys",
        "add",
        "--provider",
        "anthropic",
        "--from-file",
        &path,
        "--weight",
        "2",
    ];
    let run = op.run(&args).await;
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("added 5000 of 5000 keys (anthropic); 0 already stored"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("stored 500/5000 keys"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("stored 5000/5000 keys"),
        "{}",
        run.stderr
    );
    let rows = op.rows().await;
    assert_eq!(rows.len(), 5000);
    assert!(rows.iter().all(|row| row.1 == "anthropic" && row.3 == 2));

    // Again, plus two new keys as a JSON array on stdin.
    let again = op.run(&args).await;
    assert!(
        again.ok
            && again
                .stdout
                .contains("added 0 of 5000 keys (anthropic); 5000 already stored"),
        "{}{}",
        again.stdout,
        again.stderr
    );
    let piped = [planted_key("pipe-1"), planted_key("pipe-2")];
    let run = op
        .run_with_stdin(
            &["keys", "add", "--provider", "anthropic", "--from-file", "-"],
            &serde_json::to_string(&piped).unwrap(),
        )
        .await;
    assert!(
        run.ok && run.stdout.contains("added 2 of 2 keys"),
        "{}",
        run.stderr
    );
    assert_eq!(op.rows().await.len(), 5002);
    op.assert_never_shown(&keys.iter().map(String::as_str).collect::<Vec<_>>());
    op.assert_never_shown(&[&piped[0], &piped[1]]);
}

#[tokio::test]
async fn a_key_file_with_a_bad_line_stores_nothing_and_names_the_line_not_the_key() {
    let mut op = Operator::new().await;
    let (good, bad) = (planted_key("good"), planted_key("bad"));
    op.add("anthropic", &planted_key("before"), &[]).await;
    let file = op.env.data_dir.path().join("keys.txt");
    std::fs::write(&file, format!("{good}\n\n{bad} trailing-half\n")).unwrap();
    let path = file.display().to_string();
    let run = op
        .run(&[
            "keys",
            "add",
            "--provider",
            "anthropic",
            "--from-file",
            &path,
        ])
        .await;
    assert!(!run.ok);
    assert!(
        run.stderr
            .contains("invalid --from-file: the key on line 3 must be printable ASCII"),
        "{}",
        run.stderr
    );
    assert_eq!(op.rows().await.len(), 1, "nothing stored");
    let missing = op
        .run(&[
            "keys",
            "add",
            "--provider",
            "anthropic",
            "--from-file",
            "nowhere.txt",
        ])
        .await;
    assert!(
        !missing.ok && missing.stderr.contains("cannot read nowhere.txt"),
        "{}",
        missing.stderr
    );
    let both = op
        .run(&[
            "keys",
            "add",
            "--provider",
            "anthropic",
            "--from-file",
            &path,
            "--key",
            &good,
        ])
        .await;
    assert!(
        !both.ok && both.stderr.contains("cannot be used with"),
        "{}",
        both.stderr
    );
    assert!(!op.transcript.contains("trailing-half"));
    op.assert_never_shown(&[&good, &bad]);
}

#[tokio::test]
async fn a_key_added_with_a_scope_stores_it_and_a_bad_scope_is_refused() {
    let mut op = Operator::new().await;
    let scoped = planted_key("scoped");
    let id = op
        .add("anthropic", &scoped, &["--scope", " acme-prod "])
        .await;
    let refused = planted_key("unscoped");
    let bad = op
        .run(&[
            "keys",
            "add",
            "--provider",
            "anthropic",
            "--key",
            &refused,
            "--scope",
            "",
        ])
        .await;
    assert!(!bad.ok);
    assert!(bad.stderr.contains("--scope"), "{}", bad.stderr);
    let pool = op.pool().await;
    let scopes: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT id, cache_scope FROM api_keys ORDER BY rowid")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(scopes, vec![(id, Some("acme-prod".to_string()))]);
    op.assert_never_shown(&[&scoped, &refused]);
}

#[tokio::test]
async fn a_key_file_gives_its_weight_and_scope_to_new_and_stored_keys_alike() {
    let mut op = Operator::new().await;
    let (stored, fresh) = (planted_key("stored"), planted_key("fresh"));
    let stored_id = op.add("anthropic", &stored, &["--weight", "3"]).await;
    let file = op.env.data_dir.path().join("keys.txt");
    std::fs::write(&file, format!("{stored}\n{fresh}\n")).unwrap();
    let path = file.display().to_string();
    let from_file = ["keys", "add", "--provider", "anthropic", "--from-file"];
    let settings = async |op: &Operator| {
        let pool = op.pool().await;
        let rows: Vec<(String, i64, Option<String>)> =
            sqlx::query_as("SELECT id, weight, cache_scope FROM api_keys ORDER BY rowid")
                .fetch_all(&pool)
                .await
                .unwrap();
        pool.close().await;
        rows
    };

    // A scope alone: the new key gets weight 1, the stored one keeps 3.
    let run = op
        .run(&[&from_file[..], &[&path, "--scope", "acme"]].concat())
        .await;
    assert!(
        run.ok
            && run.stdout.contains(
                "added 1 of 2 keys (anthropic); 1 already stored, now with the given --weight/--scope"
            ),
        "{}{}",
        run.stdout,
        run.stderr
    );
    let rows = settings(&op).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], (stored_id.clone(), 3, Some("acme".to_string())));
    assert_eq!((rows[1].1, rows[1].2.as_deref()), (1, Some("acme")));

    // A weight alone: both take it, both keep their scope.
    let run = op
        .run(&[&from_file[..], &[&path, "--weight", "4"]].concat())
        .await;
    assert!(run.ok, "{}", run.stderr);
    let rows = settings(&op).await;
    assert!(
        rows.iter()
            .all(|row| row.1 == 4 && row.2.as_deref() == Some("acme")),
        "{rows:?}"
    );

    // Neither: nothing changes, and the line says nothing was applied.
    let run = op.run(&[&from_file[..], &[&path]].concat()).await;
    assert!(
        run.ok && run.stdout.trim_end().ends_with("2 already stored"),
        "{}",
        run.stdout
    );
    assert_eq!(settings(&op).await, rows);
    op.assert_never_shown(&[&stored, &fresh]);
}
