//! `pdd bench` end to end: it starts the real server with its own PKI, drives it over mutual
//! TLS and reports what it measured. Short runs: this checks that the load generator works and
//! reports honestly, not how fast the gateway is (docs/performance.md has the figures).

mod common;

use common::{pdd_bin, TempDir};

fn bench(args: &[&str], data: Option<&std::path::Path>) -> (i32, serde_json::Value, String) {
    let mut c = pdd_bin();
    c.arg("bench").args(args).arg("--json");
    if let Some(d) = data {
        c.arg("--data").arg(d);
    }
    let out = c.output().expect("pdd bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let v = serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), v, stderr)
}

fn num(v: &serde_json::Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("{k} missing or not a number in {v}"))
}

#[test]
fn the_echo_scenario_measures_the_transport_alone() {
    let (code, v, err) = bench(
        &[
            "--scenario",
            "echo",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--concurrency",
            "4",
            "--requests",
            "300",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}\n{v}");
    assert_eq!(v["scenario"], "echo");
    assert_eq!(num(&v, "errors"), 0.0, "{v}");
    assert!(num(&v, "exchanges") > 0.0, "{v}");
    assert!(num(&v, "server_cpu_us_per_exchange") > 0.0, "{v}");
    // Nothing is stored by the echo.
    assert!(v["store_bytes_per_exchange"].is_null(), "{v}");
}

#[test]
fn signed_and_unsigned_runs_report_what_they_measured() {
    let dir = TempDir::new("bench");
    let data = dir.0.join("kept");
    for (scenario, signed) in [("signed", true), ("unsigned", false)] {
        let (code, v, err) = bench(
            &[
                "--scenario",
                scenario,
                // No warm-up: a fast machine may answer all 400 within any warm-up, and an
                // exchange counts only inside the measured window.
                "--duration",
                "1.5",
                "--warmup",
                "0",
                "--concurrency",
                "4",
                "--requests",
                "400",
            ],
            Some(&data),
        );
        assert_eq!(code, 0, "{scenario}: {err}\n{v}");
        assert_eq!(v["scenario"], scenario);
        assert_eq!(num(&v, "errors"), 0.0, "{v}");
        assert!(num(&v, "exchanges") > 0.0, "{v}");
        assert!(num(&v, "exchanges_per_s") > 0.0, "{v}");
        assert!(
            num(&v, "p50_ms") > 0.0 && num(&v, "p50_ms") <= num(&v, "p99_ms"),
            "{v}"
        );
        assert!(num(&v, "p99_ms") <= num(&v, "max_ms"), "{v}");
        assert!(num(&v, "peak_rss_mb") >= num(&v, "idle_rss_mb"), "{v}");
        assert!(num(&v, "idle_rss_mb") > 1.0, "{v}");
        assert!(num(&v, "rsa_sign_ceiling_per_s") > 0.0, "{v}");
        assert!(num(&v, "store_bytes_per_exchange") > 0.0, "{v}");
        // The modulo is about the size asked for; a signed request carries the signature.
        let payload = num(&v, "payload_bytes");
        assert!((900.0..2100.0).contains(&payload), "{v}");
        assert!(num(&v, "request_bytes") > payload, "{v}");
        // CPU per exchange, the server's and the client's, sampled over the window: each
        // answer cost the server something (at least a parse and a store write).
        let server = num(&v, "server_cpu_us_per_exchange");
        assert!(server > 0.0, "{v}");
        assert!(num(&v, "client_cpu_us_per_exchange") > 0.0, "{v}");
        let rsa = num(&v, "rsa_sign_us");
        assert!(
            (rsa - 1e6 / num(&v, "rsa_sign_per_core_per_s")).abs() < 1e-6,
            "{v}"
        );
        if signed {
            let r = num(&v, "ratio_to_ceiling");
            let expect = num(&v, "exchanges_per_s") / num(&v, "rsa_sign_ceiling_per_s");
            assert!((r - expect).abs() < 1e-9, "{v}");
            assert!((num(&v, "efficiency") - rsa / server).abs() < 1e-9, "{v}");
        } else {
            assert!(v["ratio_to_ceiling"].is_null(), "{v}");
            assert!(v["efficiency"].is_null(), "{v}");
            // The echo server, the transport alone, measured on the same requests.
            let eco = num(&v, "echo_exchanges_per_s");
            assert!(eco > 0.0, "{v}");
            assert!(num(&v, "echo_server_cpu_us_per_request") > 0.0, "{v}");
            let r = num(&v, "ratio_to_echo");
            assert!((r - num(&v, "exchanges_per_s") / eco).abs() < 1e-9, "{v}");
        }
    }
    // The kept store holds both runs' exchanges, and the second run numbered after the first
    // (no duplicate Identificatori, hence no errors above).
    let (code, v, err) = bench(
        &[
            "--scenario",
            "unsigned",
            "--duration",
            "0.5",
            "--warmup",
            "0",
            "--concurrency",
            "2",
            "--requests",
            "50",
        ],
        Some(&data),
    );
    assert_eq!(code, 0, "{err}");
    assert!(num(&v, "stored_before") >= 2.0, "{v}");
    assert!(data.join("store").is_dir() && data.join("pki/ca.crt").is_file());
}

#[test]
fn requests_the_server_refuses_mid_body_are_errors_not_a_silent_death() {
    // 128 bodies of 478 KB at once are more than a partner's share of bodies in flight (32
    // MiB): the server answers 503 and closes while the client still writes. The load
    // generator once died of SIGPIPE there, printing nothing and leaving its server running.
    let (code, v, err) = bench(
        &[
            "--scenario",
            "unsigned",
            "--payload-kb",
            "400",
            "--concurrency",
            "128",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--requests",
            "300",
        ],
        None,
    );
    // Exit code 1 for a run with errors, and its report; not a signal and no report.
    assert_eq!(code, 1, "{err}\n{v}");
    assert!(num(&v, "errors") > 0.0, "{v}");
    assert!(num(&v, "exchanges") > 0.0, "{v}");
    assert!(v["first_error"].is_string(), "{v}");
}

#[test]
fn the_prepared_requests_running_out_is_reported() {
    let (code, v, err) = bench(
        &[
            "--scenario",
            "unsigned",
            "--duration",
            "30",
            "--warmup",
            "0",
            "--concurrency",
            "2",
            "--requests",
            "20",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["ran_out_of_requests"], true, "{v}");
    assert!(num(&v, "duration_s") < 30.0, "{v}");
    assert!(num(&v, "exchanges") <= 20.0, "{v}");
}

#[test]
fn bad_arguments_are_refused_with_a_message() {
    let out = pdd_bin()
        .args(["bench", "--concurrency", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--concurrency"));
}
