package instancebench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/oci"
	"github.com/nimbus-fn/nimbus/driver/oci/ocitest"
	"github.com/nimbus-fn/nimbus/driver/sandbox"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

const (
	imagePulls   = 3
	bigImageMB   = 50
	bigImageLyrs = 5
)

// BenchmarkImage prints image functions' costs against their baselines,
// measured in the same run: the cold start of an image function whose
// layers are cached against a zip function (the same aws-lambda-go echo
// binary, both sandboxed, interleaved), and the first pull of a 50 MB
// image from a loopback registry against plainly downloading its blobs.
func BenchmarkImage(b *testing.B) {
	if m := sandbox.Missing(); len(m) > 0 {
		b.Skipf("image functions need isolation; this host lacks: %v", m)
	}
	for i := 0; i < b.N; i++ {
		imageTable(b)
	}
}

func imageTable(b *testing.B) {
	reg := ocitest.NewRegistry(b, "", "")
	bin := ocitest.DirEntries(b, testfn.Dir(b, "echo"), "/")
	bin[0].Name = "main"
	small := reg.Push(b, "bench/echo:v1", ocitest.Image(b, v1.Config{Entrypoint: []string{"/main"}}, ocitest.Layer(b, bin...)))
	layers := []v1.Layer{ocitest.Layer(b, bin...)}
	for i := 0; i < bigImageLyrs; i++ {
		layers = append(layers, ocitest.RandomLayer(b, fmt.Sprintf("data/%d.bin", i), bigImageMB<<20/bigImageLyrs))
	}
	bigImg := ocitest.Image(b, v1.Config{Entrypoint: []string{"/main"}}, layers...)
	big := reg.Push(b, "bench/big:v1", bigImg)

	// Cold starts: zip vs image (layers cached), interleaved.
	cache := b.TempDir()
	st, err := oci.Open(cache, 0)
	if err != nil {
		b.Fatal(err)
	}
	warm, err := st.Pull(context.Background(), small, oci.Auth{})
	if err != nil {
		b.Fatal(err)
	}
	st.Release(warm)
	var totals, startups [2][]time.Duration
	for i := 0; i < colds; i++ {
		for mode := 0; mode < 2; mode++ {
			time.Sleep(coldGap)
			cfg := echoConfig(b)
			cfg.StateDir = b.TempDir()
			cfg.StdoutPath = filepath.Join(cfg.StateDir, "stdout.log")
			if mode == 1 {
				cfg.Runtime, cfg.CodeDir = "", ""
				cfg.Image = &instance.ImageConfig{Ref: small, CacheDir: cache}
			}
			s0 := time.Now()
			in, err := instance.New(cfg, hclog.NewNullLogger())
			if err != nil {
				b.Fatal(err)
			}
			if err := in.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			startups[mode] = append(startups[mode], time.Since(s0))
			t0 := time.Now()
			resp, err := (&invokeapi.Client{Secret: "bench"}).Invoke(context.Background(), in.Addr(), &invokeapi.Request{Payload: []byte(payload)})
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.FunctionError != "" {
					err = fmt.Errorf("function error: %s", body)
				}
				totals[mode] = append(totals[mode], time.Since(t0))
			}
			_ = in.Stop(context.Background())
			if err != nil {
				b.Fatal(err)
			}
		}
	}

	// First pulls of the 50 MB image into an empty cache, against a plain
	// download of the same blobs from the same registry, interleaved.
	var pulls, downloads []time.Duration
	digests := make([]string, 0, len(layers))
	for _, l := range layers {
		digests = append(digests, ocitest.Digest(b, l))
	}
	repo := strings.SplitN(strings.TrimPrefix(big, reg.Host+"/"), "@", 2)[0]
	var bigSize int64
	for i := 0; i < imagePulls; i++ {
		t0 := time.Now()
		for _, d := range digests {
			resp, err := http.Get("http://" + reg.Host + "/v2/" + repo + "/blobs/" + d)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		downloads = append(downloads, time.Since(t0))

		dir := b.TempDir()
		s, err := oci.Open(dir, 0)
		if err != nil {
			b.Fatal(err)
		}
		t0 = time.Now()
		img, err := s.Pull(context.Background(), big, oci.Auth{})
		if err != nil {
			b.Fatal(err)
		}
		pulls = append(pulls, time.Since(t0))
		bigSize = img.Size
		s.Release(img)
		_ = os.RemoveAll(dir)
	}
	med := func(d []time.Duration) time.Duration {
		d = append([]time.Duration(nil), d...)
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	zipCold, imgCold := med(totals[0]), med(totals[1])
	zipStart, imgStart := med(startups[0]), med(startups[1])
	pull, dl := med(pulls), med(downloads)
	var out strings.Builder
	fmt.Fprintf(&out, "\nimage functions (same run; medians; ratios are what to read on a shared machine)\n")
	fmt.Fprintf(&out, "%-52s %14s %14s %8s\n", "", "zip (baseline)", "image", "ratio")
	fmt.Fprintf(&out, "%-52s %14s %14s %7.2fx\n", fmt.Sprintf("cold start: spawn → first response (of %d)", colds), ms(zipCold), ms(imgCold), float64(imgCold)/float64(zipCold))
	fmt.Fprintf(&out, "%-52s %14s %14s %7.2fx\n", "instance New+Start (image: cached-layer lookup)", ms(zipStart), ms(imgStart), float64(imgStart)/float64(zipStart))
	fmt.Fprintf(&out, "%-52s %14s %14s %8s\n", "", "download only", "oci pull", "")
	fmt.Fprintf(&out, "%-52s %14s %14s %7.2fx\n", fmt.Sprintf("first pull, %d MB image in %d layers (of %d)", bigImageMB, len(layers), imagePulls), ms(dl), ms(pull), float64(pull)/float64(dl))
	fmt.Fprintf(&out, "(pull = manifest + config + blobs verified (sha256 compressed and diff id), gunzipped and unpacked: %d bytes on disk)\n", bigSize)
	fmt.Print(out.String())
	b.ReportMetric(float64(imgCold)/float64(zipCold), "image/zip-cold")
	b.ReportMetric(float64(pull)/float64(dl), "pull/download")
}
