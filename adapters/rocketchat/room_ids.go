package rocketchat

// room_ids.go: the room ids clients see. Rocket.Chat's realtime API lets
// the client choose a new room's _id (the seed: "before sending the first
// message you have to generate a random room _id"), and the room keeps
// that _id everywhere afterwards. chatgate keeps its own conversation id
// internal and binds the client's id to it in the store's mapping tables
// (KindRoomID), committed together with the conversation, so that no
// event of the room is ever published under another id. Rooms started
// without a client id are shown under the conversation id.
//
// A legacy client that sends a new rid while its visitor already has an
// open room (Rocket.Chat would open a second room; chatgate keeps one open
// room per visitor) gets that rid bound to the open room as an extra name
// (KindRoomAlias): its calls and subscriptions under it reach the room, and
// its subscriptions see the room's messages under the name they used.

import (
	"context"
	"errors"
	"net/http"

	lru "github.com/hashicorp/golang-lru/v2"

	"chatgate/core/model"
	"chatgate/store"
)

// maxRoomIDLen bounds a client-chosen room id (Rocket.Chat's are 17
// characters).
const maxRoomIDLen = 64

// validRoomID reports whether a client may name a new room rid: printable
// ASCII without '/' (stream event names are "<rid>/typing").
func validRoomID(rid string) bool {
	if rid == "" || len(rid) > maxRoomIDLen {
		return false
	}
	for i := 0; i < len(rid); i++ {
		if c := rid[i]; c <= ' ' || c > '~' || c == '/' {
			return false
		}
	}
	return true
}

// resolveRoom maps a room id from a client to a conversation id: a
// client-chosen id bound to a conversation (KindRoomAlias), else the id as
// a conversation id. aliased reports the former. An unknown id comes back
// unchanged.
//
// A room id that is a conversation's own id is remembered (plainRooms):
// such an id never becomes an alias (roomTaken refuses it, and an alias is
// bound with its conversation or never), so its two lookups, which find
// nothing on every message of such a room, are made once per node.
func (s *Surface) resolveRoom(ctx context.Context, rid string) (model.ConvID, bool) {
	if rid == "" || len(rid) > maxTokenLen {
		return model.ConvID(rid), false
	}
	if s.rest.plainRooms.Contains(rid) {
		return model.ConvID(rid), false
	}
	for _, kind := range []string{KindRoomID, KindRoomAlias} {
		if id, err := s.d.Store().Resolve(ctx, s.roomKey(kind, rid)); err == nil {
			return model.ConvID(id), true
		} else if !errors.Is(err, store.ErrNotFound) {
			return model.ConvID(rid), false
		}
	}
	if _, err := s.d.Store().Conversation(ctx, model.ConvID(rid)); err == nil {
		s.rest.plainRooms.Add(rid, struct{}{})
	}
	return model.ConvID(rid), false
}

// roomKey is the mapping key of a client room id of kind KindRoomID or
// KindRoomAlias.
func (s *Surface) roomKey(kind, rid string) store.MapKey {
	return store.MapKey{System: System, Tenant: s.cfg.Tenant, Kind: kind, Foreign: rid}
}

// roomTaken reports whether rid already names a room.
func (s *Surface) roomTaken(ctx context.Context, rid string) (bool, error) {
	for _, kind := range []string{KindRoomID, KindRoomAlias} {
		if _, err := s.d.Store().Resolve(ctx, s.roomKey(kind, rid)); err == nil {
			return true, nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return false, err
		}
	}
	if _, err := s.d.Store().Conversation(ctx, model.ConvID(rid)); err == nil {
		return true, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	return false, nil
}

// roomCacheSize bounds each of the room caches (roomIDs, widgetRooms):
// about 100 bytes an entry, so a few MiB each however many conversations
// the node has served. Evicted entries are read back from the store.
const roomCacheSize = 1 << 15

// newRoomCaches makes the bounded caches of roomID and widgetRoom, of
// size entries each (size > 0).
func newRoomCaches(size int) (*lru.Cache[model.ConvID, string], *lru.Cache[model.ConvID, bool]) {
	ids, err := lru.New[model.ConvID, string](size)
	if err != nil {
		panic(err) // only for a size <= 0, which no caller passes
	}
	widget, err := lru.New[model.ConvID, bool](size)
	if err != nil {
		panic(err)
	}
	return ids, widget
}

// roomID is the _id clients see for a conversation: the id its client
// chose, else the conversation id.
//
// Its answer is cached (a bounded LRU, so memory does not grow with every
// conversation ever served), and the cache stays true with several nodes
// on one store: the KindRoomID mapping is committed in the same batch as
// the conversation or never, and a mapping is never rebound or deleted.
// Whichever node created the conversation, once any node can read the
// conversation id (the only way a caller gets one) the store's answer is
// final, so a cached answer can never go stale and no invalidation is
// needed when another node writes.
//
// It is read with Peek (a shared lock) rather than Get (an exclusive
// lock to move the entry to the front): every message a room's followers
// get and every send's answer looks its room up here, and Get's lock was
// half of rendering a message (profile of round 6). The cost is that
// eviction follows insertion rather than use: with more than
// roomCacheSize rooms, an active room's entry may be evicted and read
// back from the store once.
func (s *Surface) roomID(ctx context.Context, id model.ConvID) string {
	if v, ok := s.rest.roomIDs.Peek(id); ok {
		return v
	}
	rid, err := s.d.Store().Reverse(ctx, System, s.cfg.Tenant, KindRoomID, string(id))
	switch {
	case err == nil && rid != "":
	case errors.Is(err, store.ErrNotFound), err == nil:
		rid = string(id)
	default:
		// Not cached: a store failure is not an answer.
		return string(id)
	}
	s.rest.roomIDs.Add(id, rid)
	return rid
}

// roomAlias is the mapping that binds a client-chosen rid to the
// conversation being started (empty Core: the new conversation's id), or
// nil when rid cannot name a room or already names one.
func (s *Surface) roomAlias(ctx context.Context, rid string) ([]store.Mapping, error) {
	if !validRoomID(rid) {
		return nil, nil
	}
	if taken, err := s.roomTaken(ctx, rid); err != nil {
		return nil, err
	} else if taken {
		return nil, errCannotAccess
	}
	return []store.Mapping{{MapKey: s.roomKey(KindRoomID, rid)}}, nil
}

// kindWidgetRoom marks a room the widget started (its source): a mapping
// from a random id to the conversation, committed with the start, read
// back with Reverse.
const kindWidgetRoom = "widget_room"

// isWidget reports the widget's cookie rc_is_widget=t (set by the
// @rocket.chat/livechat iframe), which Rocket.Chat's isWidget() reads.
func isWidget(h http.Header) bool {
	r := http.Request{Header: h}
	ck, err := r.Cookie("rc_is_widget")
	return err == nil && ck.Value == "t"
}

// widgetRoom reports whether the widget started conversation id; cached
// like roomID, and for the same reason true on every node: the mark is
// committed with the start or never, so its absence once the
// conversation exists is final too.
func (s *Surface) widgetRoom(ctx context.Context, id model.ConvID) bool {
	if v, ok := s.rest.widgetRooms.Get(id); ok {
		return v
	}
	_, err := s.d.Store().Reverse(ctx, System, s.cfg.Tenant, kindWidgetRoom, string(id))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false
	}
	s.rest.widgetRooms.Add(id, err == nil)
	return err == nil
}

// conversation reads the conversation a client's room id names.
func (s *Surface) conversation(ctx context.Context, rid string) (model.Conversation, error) {
	id, _ := s.resolveRoom(ctx, rid)
	return s.d.Store().Conversation(ctx, id)
}
