//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestServeChild is the gateway process TestKill9Durability kills. It runs
// only when that test starts it.
func TestServeChild(t *testing.T) {
	cfg := os.Getenv("CHATGATE_KILL_CHILD_CONFIG")
	if cfg == "" {
		t.Skip("started by TestKill9Durability only")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Exit with the parent: a closed stdin means it is gone.
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		cancel()
	}()
	err := serve(ctx, serveOptions{ConfigPath: cfg, DataPath: os.Getenv("CHATGATE_KILL_CHILD_DATA"), Addr: "127.0.0.1:0",
		Stderr: os.Stderr, Getenv: func(string) string { return "" },
		Listening: func(a string) { fmt.Printf("LISTENING %s\n", a) }})
	if err != nil {
		t.Fatal(err)
	}
}

// child is one gateway process under test.
type child struct {
	cmd  *exec.Cmd
	addr string
}

func startChild(t *testing.T, cfg, data string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeChild$", "-test.v=false")
	cmd.Env = append(os.Environ(), "CHATGATE_KILL_CHILD_CONFIG="+cfg, "CHATGATE_KILL_CHILD_DATA="+data)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	_ = stdin // kept open until the child is killed
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd}
	t.Cleanup(c.kill)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
			c.addr = a
			go func() {
				for sc.Scan() {
				}
			}()
			return c
		}
	}
	t.Fatalf("child exited before listening: %v", sc.Err())
	return nil
}

func (c *child) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
}

// TestKill9Durability: v2 visitors send messages while the gateway is killed
// with SIGKILL at random moments and restarted, again and again; in the end
// every acknowledged message is present exactly once and message ids are
// dense.
func TestKill9Durability(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a gateway 20 times")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfg, []byte("license:\n  id: \""+testLicence+"\"\nlivechat:\n  v2:\n    poll_timeout: 1h\nlog:\n  level: error\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "d.db")
	const (
		rounds   = 20
		visitors = 4
	)
	client := &http.Client{Timeout: 5 * time.Second}
	post := func(base, vid, action string, form url.Values) (map[string]any, error) {
		form.Set("licence_id", testLicence)
		req, _ := http.NewRequest(http.MethodPost, base+"/visitors/"+vid+"/chat/"+action, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-API-Version", "2")
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			return nil, err
		}
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("%s: %d %v", action, resp.StatusCode, m)
		}
		return m, nil
	}

	sessions := make([]string, visitors)
	acked := make([][]string, visitors)
	var mu sync.Mutex
	next := 0
	for round := 0; round < rounds; round++ {
		c := startChild(t, cfg, data)
		base := "http://" + c.addr
		for i := range sessions {
			if sessions[i] == "" {
				m, err := post(base, fmt.Sprintf("kv%d", i), "start", url.Values{"welcome_message": {"hi"}})
				if err != nil {
					t.Fatalf("start: %v", err)
				}
				sessions[i] = m["secured_session_id"].(string)
			}
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for i := 0; i < visitors; i++ {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					mu.Lock()
					next++
					text := fmt.Sprintf("m%d", next)
					mu.Unlock()
					if _, err := post(base, fmt.Sprintf("kv%d", i), "send_message", url.Values{"secured_session_id": {sessions[i]}, "message": {text}}); err != nil {
						return // killed mid-request: not acknowledged
					}
					mu.Lock()
					acked[i] = append(acked[i], text)
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Duration(50+rand.IntN(250)) * time.Millisecond)
		c.kill()
		close(stop)
		wg.Wait()
	}

	c := startChild(t, cfg, data)
	total := 0
	for i, sid := range sessions {
		type event struct {
			ID   uint64 `json:"message_id"`
			Text string `json:"text"`
			User string `json:"user_type"`
		}
		var all []event
		for {
			q := url.Values{"licence_id": {testLicence}, "secured_session_id": {sid}, "last_message_id": {fmt.Sprint(len(all) + 1)}}
			resp, err := client.Get("http://" + c.addr + fmt.Sprintf("/visitors/kv%d/chat/get_pending_messages?", i) + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			var page struct {
				Events []event `json:"events"`
			}
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Events) == 0 {
				break
			}
			all = append(all, page.Events...)
		}
		m := struct{ Events []event }{all}
		count := map[string]int{}
		for j, e := range m.Events {
			if e.ID != uint64(j+1) {
				t.Fatalf("visitor %d: message ids not dense at %d: %d", i, j, e.ID)
			}
			if e.User == "visitor" {
				count[e.Text]++
			}
		}
		for _, text := range acked[i] {
			if count[text] != 1 {
				t.Fatalf("visitor %d: acknowledged %q stored %d times", i, text, count[text])
			}
		}
		for text, n := range count {
			if n != 1 {
				t.Fatalf("visitor %d: %q stored %d times", i, text, n)
			}
		}
		total += len(acked[i])
	}
	if total == 0 {
		t.Fatal("no message was acknowledged: the test proved nothing")
	}
	t.Logf("%d rounds of SIGKILL, %d acknowledged messages, all present exactly once", rounds, total)
}
