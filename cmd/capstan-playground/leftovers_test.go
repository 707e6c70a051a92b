package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/capstanmesh/capstan/test/envtest"
)

// TestKillOrphanedControlPlane: of the processes the file names, an
// orphan under its recorded name is ended; a live child of someone (not
// an orphan) and a PID now running another command are left alone; the
// file is removed.
func TestKillOrphanedControlPlane(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	// An orphan: sh starts sleep in the background and exits.
	out, err := exec.Command("sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!").Output()
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exec.Command("kill", "-9", strconv.Itoa(orphan)).Run() })
	envtest.Eventually(t, 10*time.Second, func() error {
		if _, ppid, err := procStat(orphan); err != nil || ppid == os.Getpid() {
			return fmt.Errorf("sleep %d not yet reparented (%w)", orphan, err)
		}
		return nil
	})
	if _, ppid, _ := procStat(orphan); ppid != 1 {
		t.Skipf("orphans are reparented to %d here (a subreaper), not 1", ppid)
	}
	dir := t.TempDir()
	content := fmt.Sprintf("%d sleep\n%d sleep\n%d etcd\n", orphan, child.Process.Pid, os.Getpid())
	if err := os.WriteFile(filepath.Join(dir, pidsFile), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := killOrphanedControlPlane(dir); err != nil {
		t.Fatal(err)
	}
	envtest.Eventually(t, 10*time.Second, func() error {
		if _, _, err := procStat(orphan); err == nil {
			return fmt.Errorf("the orphan %d still runs", orphan)
		}
		return nil
	})
	if _, _, err := procStat(child.Process.Pid); err != nil {
		t.Errorf("the live child was ended: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, pidsFile)); !os.IsNotExist(err) {
		t.Errorf("%s is left (%v)", pidsFile, err)
	}
}
