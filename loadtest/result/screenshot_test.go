package result

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestHTMLScreenshot renders the synthetic report in headless Chromium and
// checks that the picture is a page, not a blank or broken one. It needs a
// browser, so it runs only with MQTTSTACK_CHROMIUM=1:
//
//	MQTTSTACK_CHROMIUM=1 go test ./loadtest/result -run TestHTMLScreenshot -v
//
// With MQTTSTACK_SCREENSHOT_DIR=dir the report.html and report.png are kept
// there for a person to look at. Chromium runs with every host unresolvable,
// so a report that tried to fetch anything would show it broken.
func TestHTMLScreenshot(t *testing.T) {
	if os.Getenv("MQTTSTACK_CHROMIUM") != "1" {
		t.Skip("set MQTTSTACK_CHROMIUM=1 to render the report in headless Chromium")
	}
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		t.Fatal("no chromium on PATH: install it with `apt-get install -y chromium`")
	}
	dir := os.Getenv("MQTTSTACK_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	htmlPath, _ := filepath.Abs(filepath.Join(dir, "report.html"))
	pngPath, _ := filepath.Abs(filepath.Join(dir, "report.png"))
	var buf bytes.Buffer
	if err := WriteHTML(&buf, syntheticForHTML(t)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(htmlPath, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(pngPath)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const width, height = 1400, 3000
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--host-resolver-rules=MAP * ~NOTFOUND",
		"--user-data-dir="+t.TempDir(), "--screenshot="+pngPath, "--window-size=1400,3000", "file://"+htmlPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != width || b.Dy() != height {
		t.Fatalf("screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), width, height)
	}
	// A rendered report is mostly white with text, tables and coloured
	// plot lines; a blank or error page has almost no ink and few colours.
	ink, colours := inkAndColours(img)
	t.Logf("screenshot %s: %.1f%% ink, %d colours", pngPath, 100*ink, colours)
	if ink < 0.03 || ink > 0.6 {
		t.Errorf("screenshot has %.1f%% non-white pixels; a report page has between 3%% and 60%%", 100*ink)
	}
	if colours < 200 {
		t.Errorf("screenshot has %d colours; the plots and badges should give hundreds", colours)
	}
	// The plot palette must be on the page: the first phase's blue.
	if !hasColour(img, palette[0].R, palette[0].G, palette[0].B) {
		t.Error("no plot line in the palette's first colour: the plots did not render")
	}
}

func inkAndColours(img image.Image) (ink float64, colours int) {
	b := img.Bounds()
	seen := map[uint32]bool{}
	n := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				n++
			}
			seen[(r>>8)<<16|(g>>8)<<8|bl>>8] = true
		}
	}
	return float64(n) / float64(b.Dx()*b.Dy()), len(seen)
}

func hasColour(img image.Image, r, g, b uint8) bool {
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if near(cr>>8, r) && near(cg>>8, g) && near(cb>>8, b) {
				return true
			}
		}
	}
	return false
}

func near(a uint32, b uint8) bool { return a+6 >= uint32(b) && a <= uint32(b)+6 }
