package nomadplugin

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nimbus-fn/nimbus/driver/bundlecache"
	"github.com/nimbus-fn/nimbus/driver/instance"
	driverpb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/drivers"
	"github.com/nimbus-fn/nimbus/driver/taskconfig"
)

// bundleCache returns the client-wide bundle cache for the current
// settings, opening it on first use (and again if SetConfig moved it).
func (d *Driver) bundleCache(set settings) (*bundlecache.Cache, error) {
	d.bcMu.Lock()
	defer d.bcMu.Unlock()
	max := int64(set.BundleCacheMaxMB) << 20
	if d.bcache != nil && d.bcache.Dir() == set.BundleCacheDir && d.bcMax == max {
		return d.bcache, nil
	}
	c, err := bundlecache.Open(set.BundleCacheDir, bundlecache.Options{MaxBytes: max})
	if err != nil {
		return nil, err
	}
	d.bcache, d.bcMax = c, max
	return c, nil
}

// fetchBundles resolves a task's code_url and layer_urls into directories
// of the bundle cache, downloading what the client does not have yet, and
// points the instance at them. The returned pins hold the entries until the
// instance has pinned them itself (Config.PinDirs); close them after the
// launch either way.
func (d *Driver) fetchBundles(ctx context.Context, cfg *driverpb.TaskConfig, tc *taskconfig.TaskConfig, icfg *instance.Config, st *taskState, set settings) ([]*bundlecache.Pin, error) {
	if tc.CodeURL == "" && len(tc.LayerURLs) == 0 {
		return nil, nil
	}
	cache, err := d.bundleCache(set)
	if err != nil {
		return nil, err
	}
	var srcs []bundlecache.Source
	if tc.CodeURL != "" {
		srcs = append(srcs, bundlecache.Source{URL: tc.CodeURL, SHA256: tc.CodeSHA256})
	}
	for i, u := range tc.LayerURLs {
		srcs = append(srcs, bundlecache.Source{URL: u, SHA256: tc.LayerSHA256s[i]})
	}
	began := time.Now()
	pins := make([]*bundlecache.Pin, len(srcs))
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	for i, src := range srcs {
		wg.Go(func() { pins[i], errs[i] = cache.Get(ctx, src) })
	}
	wg.Wait()
	fetched := 0
	for i, err := range errs {
		if err != nil {
			closePins(pins)
			return nil, err
		}
		if pins[i].Fetched {
			fetched++
		}
	}
	rest := pins
	if tc.CodeURL != "" {
		icfg.CodeDir, st.CodeDir = pins[0].Dir, pins[0].Dir
		rest = pins[1:]
	}
	if len(tc.LayerURLs) > 0 {
		icfg.LayerDirs = icfg.LayerDirs[:0]
		for _, p := range rest {
			icfg.LayerDirs = append(icfg.LayerDirs, p.Dir)
		}
	}
	for _, p := range pins {
		icfg.PinDirs = append(icfg.PinDirs, filepath.Dir(p.Dir))
	}
	d.events.emit(cfg, "Bundles ready", map[string]string{
		"bundles": strconv.Itoa(len(pins)), "downloaded": strconv.Itoa(fetched),
		"fetch_ms": strconv.FormatFloat(float64(time.Since(began))/float64(time.Millisecond), 'f', 1, 64),
	})
	if fetched > 0 {
		go func() {
			if freed, err := cache.Collect(); err != nil {
				d.logger.Warn("trimming the bundle cache", "error", err)
			} else if freed > 0 {
				d.logger.Info("trimmed the bundle cache", "freed_bytes", freed)
			}
		}()
	}
	return pins, nil
}

func closePins(pins []*bundlecache.Pin) {
	for _, p := range pins {
		_ = p.Close()
	}
}
