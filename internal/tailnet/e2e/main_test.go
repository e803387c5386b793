package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/reel-rec/reel/internal/tailnet/tailnettest"
	"github.com/reel-rec/reel/internal/testutil"
)

// Environment the parent passes to the isolated child.
const (
	envIsolated   = "REEL_E2E_ISOLATED"   // "1" in the child
	envUnisolated = "REEL_E2E_UNISOLATED" // why isolation failed (the tests then skip, or fail under CI)
	envReel       = "REEL_E2E_REEL"       // reel binary
	envTSDir      = "REEL_E2E_TAILSCALE"  // directory with tailscaled and tailscale
	envToolsErr   = "REEL_E2E_TOOLS_ERR"  // why the binaries could not be built
)

// TestMain re-runs the test binary in a network namespace of its own with
// only "lo" up, after building the binaries the tests run (which needs the
// module proxy, so it happens outside). Inside, nothing can leave loopback:
// there is no other interface and no route.
func TestMain(m *testing.M) {
	if os.Getenv(envIsolated) == "1" {
		if err := loopbackOnly(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: inside the namespace: %v\n", err)
			os.Exit(1)
		}
		setChildEnv()
		code := m.Run()
		if code == 0 {
			// Leaks are checked once all tests ran, as goleak.VerifyTestMain does.
			if err := goleak.Find(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: goroutines left behind: %v\n", err)
				code = 1
			}
		}
		os.Exit(code)
	}
	if wantsNoTests() {
		os.Exit(m.Run())
	}
	err := canIsolate()
	if err == nil {
		prepareTools()
		var code int
		if code, err = runIsolated(); err == nil {
			os.Exit(code)
		}
	}
	// No namespace (no privilege): run the tests here, where each skips
	// (or fails under CI) rather than touch the network.
	os.Setenv(envUnisolated, err.Error())
	os.Exit(m.Run())
}

// wantsNoTests reports whether the run only lists tests or selects none
// (go vet, -run '^$' with -fuzz or -bench elsewhere), so nothing need be
// built.
func wantsNoTests() bool {
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.list") || a == "-test.run=^$" {
			return true
		}
	}
	return false
}

// canIsolate tries making a network namespace with a trivial command, so
// that nothing is built when the tests could only skip.
func canIsolate() error {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.SysProcAttr = isolatedAttr()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cannot make a network namespace: %v: %s", err, out)
	}
	return nil
}

func isolatedAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() != 0 {
		// Unprivileged: a user namespace in which we are root gives the
		// right to make the network namespace.
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	return attr
}

func runIsolated() (int, error) {
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envIsolated+"=1")
	cmd.SysProcAttr = isolatedAttr()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("cannot make a network namespace: %w", err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 1, nil
	}
	return 0, nil
}

// loopbackOnly brings "lo" up and checks it is the only interface.
func loopbackOnly() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	return checkLoopbackOnly()
}

// checkLoopbackOnly fails unless the only network interface is loopback.
func checkLoopbackOnly() error {
	ifs, err := net.Interfaces()
	if err != nil {
		return err
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			return fmt.Errorf("interface %s is not loopback: not isolated", i.Name)
		}
	}
	return nil
}

// setChildEnv sets what every node in the namespace needs: no port
// mapping, no LAN endpoints, no proxies, and "the network is up" (with
// only loopback, Tailscale would otherwise think it is offline and pause).
func setChildEnv() {
	for _, v := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "NO_PROXY"} {
		os.Unsetenv(v)
	}
	tailnettest.SetNodeEnv()
	os.Setenv("TS_ASSUME_NETWORK_UP_FOR_TEST", "1")
}

// isolated skips t (fails it under CI) unless it runs in the namespace.
func isolated(t *testing.T) {
	t.Helper()
	if why := os.Getenv(envUnisolated); why != "" {
		testutil.SkipOrFail(t, "not isolated from the network (%s); these tests run only in a loopback-only network namespace", why)
	}
	if err := checkLoopbackOnly(); err != nil {
		t.Fatal(err)
	}
}

// prepareTools builds reel and makes sure tailscaled and tailscale are in
// their cache, outside the namespace (the build may need the module proxy).
func prepareTools() {
	root, err := moduleRoot()
	if err != nil {
		os.Setenv(envToolsErr, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "reel-e2e-bin")
	if err != nil {
		os.Setenv(envToolsErr, err.Error())
		return
	}
	reel := filepath.Join(dir, "reel")
	build := exec.CommandContext(ctx, "go", "build", "-o", reel, "./cmd/reel")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		os.Setenv(envToolsErr, fmt.Sprintf("building reel: %v\n%s", err, out))
		return
	}
	os.Setenv(envReel, reel)
	tsDir := tailscaleDir()
	if !exists(filepath.Join(tsDir, "tailscaled")) || !exists(filepath.Join(tsDir, "tailscale")) {
		fmt.Fprintf(os.Stderr, "e2e: building tailscaled %s into %s (once; scripts/install-tailscale-tools.sh)\n", tailscaleVersion, tsDir)
		cmd := exec.CommandContext(ctx, "sh", filepath.Join(root, "scripts", "install-tailscale-tools.sh"))
		cmd.Env = append(os.Environ(), "REEL_TAILSCALE_DIR="+tsDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			os.Setenv(envToolsErr, fmt.Sprintf("building tailscaled: %v\n%s", err, out))
			return
		}
	}
	os.Setenv(envTSDir, tsDir)
}

// tailscaleVersion is the Tailscale release the tests run; keep it in step
// with go.mod and scripts/install-tailscale-tools.sh.
const tailscaleVersion = "v1.102.5"

// tailscaleDir is the cache of tailscaled and tailscale binaries, as
// scripts/install-tailscale-tools.sh fills it.
func tailscaleDir() string {
	if d := os.Getenv("REEL_TAILSCALE_DIR"); d != "" {
		return d
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	gopath := strings.TrimSpace(string(out))
	if err != nil || gopath == "" {
		gopath = filepath.Join(os.Getenv("HOME"), "go")
	}
	return filepath.Join(strings.Split(gopath, string(filepath.ListSeparator))[0], "reel-cache", "tailscale@"+tailscaleVersion)
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the reel module")
	}
	return filepath.Dir(mod), nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// tool returns the path of a prepared binary: "reel", "tailscaled" or
// "tailscale".
func tool(t *testing.T, name string) string {
	t.Helper()
	if e := os.Getenv(envToolsErr); e != "" {
		t.Fatalf("test binaries: %s", e)
	}
	var p string
	switch name {
	case "reel":
		p = os.Getenv(envReel)
	default:
		p = filepath.Join(os.Getenv(envTSDir), name)
	}
	if p == "" || !exists(p) {
		t.Fatalf("%s was not prepared", name)
	}
	return p
}
