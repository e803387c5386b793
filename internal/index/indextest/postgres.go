package indextest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// Postgres is a private PostgreSQL cluster on loopback, made with
// Debian's initdb and pg_ctl for tests and benchmarks. As root it runs as
// "nobody", since postgres refuses to run as root.
type Postgres struct {
	dir    string // holds data/ and the socket
	bin    string // directory of initdb and pg_ctl
	port   int
	asUser string // "" or the user to run as (runuser)
	dbs    atomic.Int64
}

// PostgresBin returns the directory of initdb and pg_ctl: from PATH, or
// Debian's /usr/lib/postgresql/<version>/bin.
func PostgresBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(m) == 0 {
		return "", errors.New("PostgreSQL is not installed: no initdb on PATH or in /usr/lib/postgresql/*/bin (apt-get install postgresql; scripts/test-deps.sh does)")
	}
	return filepath.Dir(m[len(m)-1]), nil
}

// StartPostgres makes a new cluster in a new directory under parent
// ("" for the system's temp dir) and starts it on a free loopback port.
// Stop it with Stop, which also removes the directory.
func StartPostgres(ctx context.Context, parent string) (*Postgres, error) {
	bin, err := PostgresBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(parent, "reel-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		p.asUser = "nobody"
		u, err := user.Lookup(p.asUser)
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("postgres refuses to run as root and there is no user nobody: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		// dir's parents must be searchable by nobody: parent should be
		// a world-searchable directory such as /tmp.
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if out, err := p.run(ctx, "initdb", "-D", p.data(), "-U", "reel", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	opts := fmt.Sprintf("-k %s -h 127.0.0.1 -p %d -c fsync=off -c full_page_writes=off -c max_connections=200", dir, p.port)
	if out, err := p.run(ctx, "pg_ctl", "-D", p.data(), "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "120", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	return p, nil
}

func (p *Postgres) data() string { return filepath.Join(p.dir, "data") }

func (p *Postgres) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	path := filepath.Join(p.bin, prog)
	var cmd *exec.Cmd
	if p.asUser != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", p.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	return cmd.CombinedOutput()
}

// URL is the connection URL of database db.
func (p *Postgres) URL(db string) string {
	return fmt.Sprintf("postgres://reel@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

// NewDB creates a new, empty database and returns its URL.
func (p *Postgres) NewDB(ctx context.Context) (string, error) {
	name := fmt.Sprintf("t%d_%d", time.Now().UnixNano()%1e9, p.dbs.Add(1))
	db, err := sql.Open("pgx", p.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	return p.URL(name), nil
}

// Stop stops the cluster and removes its directory.
func (p *Postgres) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := p.run(ctx, "pg_ctl", "-D", p.data(), "-m", "immediate", "-w", "stop")
	if err != nil && !strings.Contains(string(out), "no server running") {
		err = fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	} else {
		err = nil
	}
	return errors.Join(err, os.RemoveAll(p.dir))
}
