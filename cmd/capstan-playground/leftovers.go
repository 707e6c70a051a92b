package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The API server and etcd are envtest's children, which a crash of the
// playground (SIGKILL) leaves running; everything else dies with it (the
// operator by its parent-death signal, the pods' processes with their
// namespaces, which the next start sweeps). So the playground writes their
// PIDs to pidsFile, and the next start ends those that still run as
// orphans under the same name.

// pidsFile is the file of the control plane's PIDs in the log directory.
const pidsFile = "controlplane.pids"

// controlPlaneNames are the commands whose orphans the next start ends.
var controlPlaneNames = map[string]bool{"etcd": true, "kube-apiserver": true}

// procStat reads a process's command name and parent PID.
func procStat(pid int) (comm string, ppid int, err error) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", 0, fmt.Errorf("reading the stat of %d: %w", pid, err)
	}
	s := string(raw)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, fmt.Errorf("parsing the stat of %d", pid)
	}
	fields := strings.Fields(s[end+1:])
	if len(fields) < 2 {
		return "", 0, fmt.Errorf("parsing the stat of %d", pid)
	}
	ppid, err = strconv.Atoi(fields[1])
	return s[open+1 : end], ppid, err
}

// recordControlPlane writes the PIDs of this process's etcd and
// kube-apiserver children to dir/pidsFile.
func recordControlPlane(dir string) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return fmt.Errorf("listing processes: %w", err)
	}
	var b strings.Builder
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, ppid, err := procStat(pid); err == nil && ppid == os.Getpid() && controlPlaneNames[comm] {
			fmt.Fprintf(&b, "%d %s\n", pid, comm)
		}
	}
	path := filepath.Join(dir, pidsFile)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// killOrphanedControlPlane ends the processes dir/pidsFile names that
// still run as orphans (parent 1) under the recorded name, and removes
// the file. A PID reused by anything else is left alone.
func killOrphanedControlPlane(dir string) error {
	path := filepath.Join(dir, pidsFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		var pid int
		var name string
		if _, err := fmt.Sscan(line, &pid, &name); err != nil {
			continue
		}
		if comm, ppid, err := procStat(pid); err == nil && comm == name && ppid == 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}
