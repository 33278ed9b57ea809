package main

// `chatgate import --from <vendor>`: a vendor's history pulled through its
// API (see migrate/rcimport and docs/migration.md).

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"chatgate/adapters/backfill"
	lcbackfill "chatgate/adapters/livechat/backfill"
	lcimport "chatgate/adapters/livechat/importer"
	rcbackfill "chatgate/adapters/rocketchat/backfill"
	rcimport "chatgate/adapters/rocketchat/importer"
	"chatgate/configs"
	"chatgate/core/model"
)

// sourceFlags are the vendor source's address and credentials.
type sourceFlags struct {
	url, user, password, userID, authToken, basic string
	rps                                           float64
}

func (f *sourceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "url", "", "--from: the source server's base URL")
	fs.StringVar(&f.user, "user", "", "--from rocketchat: agent username or e-mail to log in with")
	fs.StringVar(&f.password, "password", "", "--from rocketchat: that agent's password (or CHATGATE_SOURCE_PASSWORD)")
	fs.StringVar(&f.userID, "user-id", "", "--from rocketchat: user id of a personal access token (instead of --user/--password)")
	fs.StringVar(&f.authToken, "auth-token", "", "--from rocketchat: the personal access token; --from livechat: an agent access token, sent as Bearer (or CHATGATE_SOURCE_TOKEN)")
	fs.StringVar(&f.basic, "basic", "", "--from livechat: ACCOUNT_ID:PERSONAL_ACCESS_TOKEN for Basic auth instead of --auth-token")
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
	case "rocketchat", "livechat":
	default:
		return fmt.Errorf("--from %q: want rocketchat or livechat", o.from)
	}
	st, err := o.sf.open(ctx, o.getenv, false)
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
	if o.from == "livechat" {
		return runLiveChatImport(ctx, o, st, agents)
	}
	p := newProgress(o.stderr, o.noProgress, -1, false, "rooms")
	sum, err := rcimport.Import(ctx, st.Store, st.Files, rcimport.Options{URL: o.source.url, User: o.source.user, Password: o.source.password,
		UserID: o.source.userID, AuthToken: o.source.authToken, RPS: o.source.rps, Agents: agents, DryRun: o.dryRun,
		Progress: progressFunc(p)})
	p.done()
	return reportImport(o, sum, sum.DryRun, err, func(w io.Writer, verb string) {
		fmt.Fprintf(w, "%s %d conversations (%d updated with new messages), %d events, %d visitors, %d files from %d rooms\n",
			verb, sum.Imported, sum.Updated, sum.Events, sum.Visitors, sum.Files, sum.Rooms)
		fmt.Fprintf(w, "skipped as already present: %d conversations, %d events\n", sum.SkippedRooms, sum.EventsPresent)
		fmt.Fprintf(w, "failed: %d\n", sum.Failed)
		for _, f := range sum.Failures {
			fmt.Fprintf(w, "  room %s: %s\n", f.Room, f.Reason)
		}
		fmt.Fprintf(w, "%d requests in %.1fs\n", sum.Requests, sum.Seconds)
	})
}

// reportImport prints an import's summary: as JSON with --json, else as
// the lines text writes after the verb ("imported", or the dry run's); the
// summary is printed even when the import failed part way, and err is
// returned wrapped.
func reportImport(o *importOptions, sum any, dryRun bool, err error, text func(w io.Writer, verb string)) error {
	if o.jsonOut {
		if jerr := json.NewEncoder(o.stdout).Encode(sum); jerr != nil && err == nil {
			err = jerr
		}
	} else {
		verb := "imported"
		if dryRun {
			verb = "dry run: would import"
		}
		text(o.stdout, verb)
	}
	if err != nil {
		return fmt.Errorf("import --from %s: %w", o.from, err)
	}
	return nil
}

// progressFunc adapts a progress bar to a (done, total) callback.
func progressFunc(p *progress) func(done, total int) {
	last := 0
	return func(done, total int) {
		if p.bar != nil && total > 0 && p.bar.GetMax64() != int64(total) {
			p.bar.ChangeMax(total)
		}
		p.add(done - last)
		last = done
	}
}

func runLiveChatImport(ctx context.Context, o *importOptions, st *cmdStore, agents map[string]model.AgentID) error {
	p := newProgress(o.stderr, o.noProgress, -1, false, "chats")
	sum, err := lcimport.Import(ctx, st.Store, st.Files, lcimport.Options{URL: o.source.url, Token: o.source.authToken,
		Basic: o.source.basic, RPS: o.source.rps, Agents: agents, DryRun: o.dryRun, Progress: progressFunc(p)})
	p.done()
	return reportImport(o, sum, sum.DryRun, err, func(w io.Writer, verb string) {
		fmt.Fprintf(w, "%s %d conversations, %d events, %d visitors, %d files from %d archived chats (%d threads)\n",
			verb, sum.Imported, sum.Events, sum.Visitors, sum.Files, sum.Chats, sum.Threads)
		fmt.Fprintf(w, "skipped as already present: %d conversations\n", sum.Skipped)
		fmt.Fprintf(w, "failed: %d\n", sum.Failed)
		for _, f := range sum.Failures {
			fmt.Fprintf(w, "  chat %s thread %s: %s\n", f.Chat, f.Thread, f.Reason)
		}
		fmt.Fprintf(w, "%d requests in %.1fs\n", sum.Requests, sum.Seconds)
	})
}

const backfillUsage = `Usage: chatgate backfill --to CONNECTOR [credentials] [flags]

Sends the history of relayed visitors into the upstream desk of relay
connector CONNECTOR, so that its agents see the visitor's earlier
conversations (those the connector did not carry).

Rocket.Chat: posted with POST livechat/messages under the visitor's upstream
token, as an agent of that desk (--user/--password or
--user-id/--auth-token); each message is marked "[imported · time · author]"
and ends with a line "chatgate:<conversation>/<seq>", and a message whose
mark is already upstream is not sent again. Agents-only events are never
sent (the route posts as the visitor).

LiveChat: LiveChat cannot write past events, so the earlier conversations go
up as ONE agents-only transcript message (send_event of the Agent Chat API,
attach_to_last_thread) in the chat the visitor's first relayed conversation
opened, ending with a line "chatgate:transcript/<visitor>"; a transcript
already in that chat is not sent again. Credentials: the connector's
agent_token as Bearer, or --auth-token, or --basic ACCOUNT_ID:PAT.

Either can be stopped and run again: a visitor done is recorded in the
store. See docs/migration.md. With bbolt, run it while serve is stopped.

Flags:
`

// runBackfill is the `backfill` action.
func runBackfill(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var sf storeFlags
	var src sourceFlags
	var to string
	var dryRun, jsonOut, noProgress bool
	fs := flag.NewFlagSet("chatgate backfill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, backfillUsage); fs.PrintDefaults() }
	sf.register(fs)
	src.register(fs)
	fs.StringVar(&to, "to", "", "the relay connector (relay.connectors[].name) whose desk gets the history")
	fs.BoolVar(&dryRun, "dry-run", false, "count what would be sent; send and write nothing")
	fs.BoolVar(&jsonOut, "json", false, "print the summary as JSON")
	fs.BoolVar(&noProgress, "no-progress", false, "no progress bar, even on a terminal")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if to == "" {
		return errors.New("--to is required")
	}
	if src.password == "" {
		src.password = getenv("CHATGATE_SOURCE_PASSWORD")
	}
	if src.authToken == "" {
		src.authToken = getenv("CHATGATE_SOURCE_TOKEN")
	}
	st, err := sf.open(ctx, getenv, true)
	if err != nil {
		return err
	}
	defer st.Close()
	var conn *configs.RelayConnector
	for i := range st.cfg.Relay.Connectors {
		if st.cfg.Relay.Connectors[i].Name == to {
			conn = &st.cfg.Relay.Connectors[i]
		}
	}
	if conn == nil {
		return fmt.Errorf("--to %q: no such relay connector in the configuration", to)
	}
	if src.url == "" {
		src.url = conn.URL
	}
	var desk backfill.Desk
	switch conn.Kind {
	case "rocketchat":
		desk = rcbackfill.New(rcbackfill.Options{URL: src.url, User: src.user, Password: src.password,
			UserID: src.userID, AuthToken: src.authToken, RPS: src.rps})
	case "livechat":
		token := src.authToken
		if token == "" && src.basic == "" {
			token = conn.AgentToken
		}
		desk = lcbackfill.New(lcbackfill.Options{URL: src.url, Version: conn.APIVersion, Token: token, Basic: src.basic, RPS: src.rps})
	default:
		return fmt.Errorf("--to %q: no backfill into a %s desk", to, conn.Kind)
	}
	p := newProgress(stderr, noProgress, -1, false, "visitors")
	sum, err := backfill.Run(ctx, st.Store, desk, backfill.Options{Connector: to, DryRun: dryRun, Progress: p.add})
	p.done()
	if jsonOut {
		if jerr := json.NewEncoder(stdout).Encode(sum); jerr != nil && err == nil {
			err = jerr
		}
	} else {
		verb := "sent"
		if sum.DryRun {
			verb = "dry run: would send"
		}
		fmt.Fprintf(stdout, "%s %d messages for %d of %d relayed visitors\n", verb, sum.Messages, sum.VisitorsDone, sum.Visitors)
		fmt.Fprintf(stdout, "skipped as already present: %d visitors, %d messages\n", sum.VisitorsSkipped, sum.MessagesPresent)
		fmt.Fprintf(stdout, "failed: %d\n", sum.Failed)
		for _, f := range sum.Failures {
			fmt.Fprintf(stdout, "  visitor %s: %s\n", f.Visitor, f.Reason)
		}
		fmt.Fprintf(stdout, "%d requests in %.1fs\n", sum.Requests, sum.Seconds)
	}
	if err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	return nil
}
