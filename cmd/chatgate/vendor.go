package main

// `chatgate import --from <vendor>`: a vendor's history pulled through its
// API (see migrate/rcimport and docs/migration.md).

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"chatgate/core/model"
	"chatgate/migrate/rcimport"
)

// sourceFlags are the vendor source's address and credentials.
type sourceFlags struct {
	url, user, password, userID, authToken string
	rps                                    float64
}

func (f *sourceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "url", "", "--from: the source server's base URL")
	fs.StringVar(&f.user, "user", "", "--from rocketchat: agent username or e-mail to log in with")
	fs.StringVar(&f.password, "password", "", "--from rocketchat: that agent's password (or CHATGATE_SOURCE_PASSWORD)")
	fs.StringVar(&f.userID, "user-id", "", "--from rocketchat: user id of a personal access token (instead of --user/--password)")
	fs.StringVar(&f.authToken, "auth-token", "", "--from rocketchat: the personal access token (or CHATGATE_SOURCE_TOKEN)")
	fs.Float64Var(&f.rps, "rps", 10, "--from: requests per second to the source at most")
}

func runVendorImport(ctx context.Context, o *importOptions) error {
	if o.source.url == "" {
		return fmt.Errorf("--from %s needs --url", o.from)
	}
	if o.source.password == "" {
		o.source.password = o.getenv("CHATGATE_SOURCE_PASSWORD")
	}
	if o.source.authToken == "" {
		o.source.authToken = o.getenv("CHATGATE_SOURCE_TOKEN")
	}
	switch o.from {
	case "rocketchat":
	case "livechat":
		return fmt.Errorf("--from livechat is not built yet: export from LiveChat is planned through the Agent Chat API (see docs/migration.md)")
	default:
		return fmt.Errorf("--from %q: want rocketchat", o.from)
	}
	st, err := o.sf.open(o.getenv, false)
	if err != nil {
		return err
	}
	defer st.Close()
	agents := map[string]model.AgentID{}
	for _, a := range st.cfg.Agents {
		agents[a.ID] = model.AgentID(a.ID)
		if a.Username != "" {
			agents[a.Username] = model.AgentID(a.ID)
		}
	}
	p := newProgress(o.stderr, o.noProgress, -1, false, "rooms")
	last := 0
	sum, err := rcimport.Import(ctx, st.st, st.files, rcimport.Options{URL: o.source.url, User: o.source.user, Password: o.source.password,
		UserID: o.source.userID, AuthToken: o.source.authToken, RPS: o.source.rps, Agents: agents, DryRun: o.dryRun,
		Progress: func(done, total int) {
			if p.bar != nil && total > 0 && p.bar.GetMax64() != int64(total) {
				p.bar.ChangeMax(total)
			}
			p.add(done - last)
			last = done
		}})
	p.done()
	if o.jsonOut {
		if jerr := json.NewEncoder(o.stdout).Encode(sum); jerr != nil && err == nil {
			err = jerr
		}
	} else {
		verb := "imported"
		if sum.DryRun {
			verb = "dry run: would import"
		}
		fmt.Fprintf(o.stdout, "%s %d conversations (%d updated with new messages), %d events, %d visitors, %d files from %d rooms\n",
			verb, sum.Imported, sum.Updated, sum.Events, sum.Visitors, sum.Files, sum.Rooms)
		fmt.Fprintf(o.stdout, "skipped as already present: %d conversations, %d events\n", sum.SkippedRooms, sum.EventsPresent)
		fmt.Fprintf(o.stdout, "failed: %d\n", sum.Failed)
		for _, f := range sum.Failures {
			fmt.Fprintf(o.stdout, "  room %s: %s\n", f.Room, f.Reason)
		}
		fmt.Fprintf(o.stdout, "%d requests in %.1fs\n", sum.Requests, sum.Seconds)
	}
	if err != nil {
		return fmt.Errorf("import --from %s: %w", o.from, err)
	}
	return nil
}
