package netpod

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockSlot takes the slot's lock without waiting; ok is false when another
// run holds it. Lock files are never removed (removing one would let two
// runs lock different files of the same name).
func lockSlot(slot int) (f *os.File, ok bool, err error) {
	path := filepath.Join(lockDir, fmt.Sprintf("slot-%02x.lock", slot))
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("opening %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("locking %s: %w", path, err)
	}
	return f, true, nil
}

func unlockSlot(f *os.File, slot int) error {
	if err := f.Close(); err != nil {
		return fmt.Errorf("releasing slot %02x: %w", slot, err)
	}
	return nil
}

// Sweep removes what runs that ended without cleaning up (a killed test
// binary) left on the host: their processes, network namespaces, veth
// pairs, bridges, hosts files and blackhole routes. A slot is swept only
// when no live run holds its lock, so concurrent runs are left alone.
func Sweep(ctx context.Context) error {
	slots, err := leftoverSlots(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for slot := range slots {
		lock, ok, err := lockSlot(slot)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue // a live run
		}
		errs = append(errs, sweepSlot(ctx, slot), unlockSlot(lock, slot))
	}
	return errors.Join(errs...)
}

// leftoverSlots finds the slots named by the host's namespaces, links,
// /etc/netns directories and lock files.
func leftoverSlots(ctx context.Context) (map[int]bool, error) {
	slots := map[int]bool{}
	names, err := ownNames(ctx)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if slot, ok := slotOf(name); ok {
			slots[slot] = true
		}
	}
	locks, _ := filepath.Glob(filepath.Join(lockDir, "slot-*.lock"))
	for _, l := range locks {
		hex := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(l), "slot-"), ".lock")
		if v, err := strconv.ParseUint(hex, 16, 8); err == nil {
			slots[int(v)] = true
		}
	}
	return slots, nil
}

// ownNames lists the namespaces, links and /etc/netns directories whose
// names start with Prefix.
func ownNames(ctx context.Context) ([]string, error) {
	var names []string
	out, err := ip(ctx, "netns", "list")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], Prefix) {
			names = append(names, f[0])
		}
	}
	out, err = ip(ctx, "-o", "link", "show")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if strings.HasPrefix(name, Prefix) {
			names = append(names, name)
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(netnsDir, Prefix+"*"))
	for _, d := range dirs {
		names = append(names, filepath.Base(d))
	}
	return names, nil
}

// slotOf parses the slot out of "cpdp-XX-N" (namespaces) or "cpdpXX…" (links).
func slotOf(name string) (int, bool) {
	rest := strings.TrimPrefix(strings.TrimPrefix(name, Prefix), "-")
	if len(rest) < 2 {
		return 0, false
	}
	v, err := strconv.ParseUint(rest[:2], 16, 8)
	if err != nil {
		return 0, false
	}
	return int(v), true
}

// sweepSlot removes everything of one slot. The caller holds its lock.
func sweepSlot(ctx context.Context, slot int) error {
	names, err := ownNames(ctx)
	if err != nil {
		return err
	}
	var errs []error
	nsPrefix := fmt.Sprintf("%s-%02x-", Prefix, slot)
	linkPrefix := fmt.Sprintf("%s%02x", Prefix, slot)
	seen := map[string]bool{}
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		switch {
		case strings.HasPrefix(name, nsPrefix):
			errs = append(errs, removeNetns(ctx, name, ""))
		case strings.HasPrefix(name, linkPrefix) && linkExists(ctx, name):
			if _, err := ip(ctx, "link", "del", name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	svc := newNetwork(slot, nil).ServiceCIDR.String()
	if out, err := ip(ctx, "route", "show", "type", "blackhole", svc); err == nil && strings.TrimSpace(out) != "" {
		if _, err := ip(ctx, "route", "del", "blackhole", svc); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
