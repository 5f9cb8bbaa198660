//! A throwaway PostgreSQL cluster for the fleet tests: Debian's `postgresql` package
//! (`initdb` and `pg_ctl` from `/usr/lib/postgresql/*/bin`, which `.ci/run` installs), in a
//! temporary folder, listening on a free loopback port; stopped when dropped. As root (CI),
//! the server runs as the `postgres` user the package creates (`initdb` refuses root).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    as_postgres: bool,
    fsync: bool,
}

/// The folder holding `initdb` and `pg_ctl`: `$PG_BIN`, else the newest
/// `/usr/lib/postgresql/N/bin`.
fn bin_dir() -> PathBuf {
    if let Some(bin) = std::env::var_os("PG_BIN") {
        return PathBuf::from(bin);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server is installed (apt-get install postgresql)")
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("a PostgreSQL version in /usr/lib/postgresql")
        .1
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Postgres {
    /// A cluster without fsync (the tests' data is thrown away).
    pub fn start() -> Postgres {
        Postgres::start_with(false)
    }

    /// A cluster that syncs its commits when `fsync` (benchmarks of the journal's cost).
    pub fn start_with(fsync: bool) -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        let as_postgres = is_root();
        if as_postgres {
            let status = Command::new("chown")
                .args(["postgres:postgres", &dir.path().display().to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "chown the cluster's folder to postgres");
        }
        let pg = Postgres {
            bin: bin_dir(),
            port: free_port(),
            as_postgres,
            fsync,
            dir,
        };
        let data = pg.data().display().to_string();
        let out = pg.tool(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "retentiond",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.start_server();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn tool(&self, name: &str, args: &[&str]) -> Output {
        let program = self.bin.join(name);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", program.display()))
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn start_server(&self) {
        let data = self.data().display().to_string();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync={} -c max_connections=200",
            self.port,
            self.dir.path().display(),
            if self.fsync { "on" } else { "off" }
        );
        let log = self.dir.path().join("server.log").display().to_string();
        let out = self.tool(
            "pg_ctl",
            &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    /// Stops the server at once (connections are cut).
    pub fn stop_server(&self) {
        let data = self.data().display().to_string();
        let out = self.tool("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn url(&self) -> String {
        format!(
            "postgresql://retentiond@127.0.0.1:{}/postgres?sslmode=disable&connect_timeout=3",
            self.port
        )
    }

    /// Writes the URL into `dir/pg-url` and returns the config's `journal:` line.
    pub fn journal_line(&self, dir: &Path) -> String {
        let file = dir.join("pg-url");
        std::fs::write(&file, self.url()).unwrap();
        format!("journal: {{postgres: \"${{file:{}}}\"}}\n", file.display())
    }

    /// One SQL statement through psql, its output rows (`|`-separated).
    pub fn sql(&self, statement: &str) -> Vec<String> {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "retentiond",
                "-d",
                "postgres",
                "-At",
                "-c",
                statement,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = self.tool("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
