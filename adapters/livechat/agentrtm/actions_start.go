package agentrtm

import (
	"context"
	"encoding/json"
	"errors"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/store"
)

// maxStartEvents bounds thread.events of start_chat / resume_chat.
const maxStartEvents = 20

type startUser struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	// Visibility (or the seed's recipients) "agents" would hide the user
	// from the customer: start_chat cannot honour it, so it is refused
	// rather than shown (add_user_to_chat can).
	Visibility string `json:"visibility"`
	Recipients string `json:"recipients"`
}

type startChatRequest struct {
	Chat *struct {
		ID     string      `json:"id"`
		Users  []startUser `json:"users"`
		Access *struct {
			GroupIDs []int `json:"group_ids"`
		} `json:"access"`
		Thread *struct {
			Events     []wire.EventIn  `json:"events"`
			Properties json.RawMessage `json:"properties"`
		} `json:"thread"`
		Properties json.RawMessage `json:"properties"`
	} `json:"chat"`
	// Active false starts the thread inactive (desk.StartInactive).
	Active *bool `json:"active"`
	// continuous is accepted and ignored: chatgate has no continuous
	// chats.
}

// StartChatResponse is start_chat's payload.
type StartChatResponse struct {
	ChatID   string   `json:"chat_id"`
	ThreadID string   `json:"thread_id"`
	EventIDs []string `json:"event_ids,omitempty"`
}

// ResumeChatResponse is resume_chat's payload.
type ResumeChatResponse struct {
	ThreadID string   `json:"thread_id"`
	EventIDs []string `json:"event_ids,omitempty"`
}

// startChat opens a thread for an existing customer (the one customer of
// chat.users; not_found when unknown; the other agents of chat.users, at
// most four, are added to it), assigned to the requesting agent
// (desk.Start with Agent), with chat.thread.events written by the agent.
// The agents' incoming_chat (and the customer's) follow from the commit.
// A customer whose chat is active answers validation "Chat is already
// active". Agents may start chats for banned customers (the ban only
// binds the customer).
func startChat(ctx context.Context, c *caller, req *wire.Request) (any, error) {
	conv, ids, err := c.startThread(ctx, req, false)
	if err != nil {
		return nil, err
	}
	return StartChatResponse{ChatID: string(conv.Visitor), ThreadID: string(conv.ID), EventIDs: ids}, nil
}

// resumeChat opens a new thread in an existing chat (chat.id) whose newest
// thread the agent may see or is of a department it serves (not_found
// otherwise); as startChat otherwise.
func resumeChat(ctx context.Context, c *caller, req *wire.Request) (any, error) {
	conv, ids, err := c.startThread(ctx, req, true)
	if err != nil {
		return nil, err
	}
	return ResumeChatResponse{ThreadID: string(conv.ID), EventIDs: ids}, nil
}

func (c *caller) startThread(ctx context.Context, req *wire.Request, resume bool) (model.Conversation, []string, error) {
	var p startChatRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return model.Conversation{}, nil, err
	}
	if p.Chat == nil {
		return model.Conversation{}, nil, wire.Errorf(wire.Validation, "chat is required")
	}
	chatProps, err := wire.DecodeInitialProps(p.Chat.Properties, "chat.properties")
	if err != nil {
		return model.Conversation{}, nil, err
	}
	var threadProps map[string]map[string]json.RawMessage
	if th := p.Chat.Thread; th != nil {
		if threadProps, err = wire.DecodeInitialProps(th.Properties, "chat.thread.properties"); err != nil {
			return model.Conversation{}, nil, err
		}
	}
	customer := ""
	var members []model.AgentID
	for _, u := range p.Chat.Users {
		if vis, err := wire.ParseVisibility(u.Visibility, u.Recipients); err != nil {
			return model.Conversation{}, nil, err
		} else if vis == model.VisibleAgents {
			return model.Conversation{}, nil, wire.Errorf(wire.Validation,
				"chat.users[].visibility agents is not supported in start_chat: add the agent with add_user_to_chat")
		}
		switch {
		case u.Type == "customer" && customer == "" && u.ID != "":
			customer = u.ID
		case u.Type == "customer":
			return model.Conversation{}, nil, wire.Errorf(wire.Validation, "chat.users must hold exactly one customer")
		case u.Type == "agent" && u.ID == string(c.agent.ID):
		case u.Type == "agent" && u.ID != "":
			// §2.7: up to four other agents, added to the thread as with
			// add_user_to_chat (visibility all).
			if _, ok := c.s.d.Router().Agent(model.AgentID(u.ID)); !ok {
				return model.Conversation{}, nil, wire.Errorf(wire.NotFound, "Agent not found")
			}
			members = append(members, model.AgentID(u.ID))
		case u.Type == "agent":
			return model.Conversation{}, nil, wire.Errorf(wire.Validation, "chat.users[].id is required")
		default:
			return model.Conversation{}, nil, wire.Errorf(wire.Validation, "chat.users[].type must be customer or agent")
		}
	}
	dept := model.DeptID("")
	if resume {
		if p.Chat.ID == "" {
			return model.Conversation{}, nil, wire.Errorf(wire.Validation, "chat.id is required")
		}
		if customer != "" && customer != p.Chat.ID {
			return model.Conversation{}, nil, wire.Errorf(wire.Validation, "chat.users names another customer")
		}
		customer = p.Chat.ID
		last, err := c.newestThread(ctx, p.Chat.ID)
		if err != nil {
			return model.Conversation{}, nil, err
		}
		if !c.canSee(last) && !c.agent.Serves(last.Department) {
			return model.Conversation{}, nil, errChatNotFound()
		}
		dept = last.Department
	} else if customer == "" {
		return model.Conversation{}, nil, wire.Errorf(wire.Validation, "chat.users must hold the customer")
	}
	if a := p.Chat.Access; a != nil && len(a.GroupIDs) > 0 {
		if len(a.GroupIDs) > 1 || a.GroupIDs[0] < 0 {
			return model.Conversation{}, nil, wire.Errorf(wire.Validation, "chat.access.group_ids must name one group")
		}
		d, ok := c.s.deptOfGroup(a.GroupIDs[0])
		if !ok {
			return model.Conversation{}, nil, wire.Errorf(wire.NotFound, "Group not found")
		}
		dept = d
	}
	if !c.agent.Serves(dept) {
		return model.Conversation{}, nil, wire.Errorf(wire.Authorization, "The agent does not serve this group")
	}
	var drafts []desk.Draft
	if th := p.Chat.Thread; th != nil {
		if len(th.Events) > maxStartEvents {
			return model.Conversation{}, nil, wire.Errorf(wire.Validation, "at most %d events", maxStartEvents)
		}
		for i := range th.Events {
			d, err := th.Events[i].Draft(c.eventSide(ctx))
			if err != nil {
				return model.Conversation{}, nil, err
			}
			drafts = append(drafts, d)
		}
	}
	if _, err := c.s.d.Store().Visitor(ctx, model.VisitorID(customer)); errors.Is(err, store.ErrNotFound) {
		if resume {
			return model.Conversation{}, nil, errChatNotFound()
		}
		return model.Conversation{}, nil, wire.Errorf(wire.NotFound, "Customer not found")
	} else if err != nil {
		return model.Conversation{}, nil, err
	}
	start := c.s.d.Start
	if p.Active != nil && !*p.Active {
		start = c.s.d.StartInactive
	}
	conv, evs, err := start(ctx, desk.StartRequest{Visitor: model.VisitorID(customer), Department: dept,
		Origin: c.s.Name(), Events: drafts, Author: c.author(), Agent: c.agent.ID, Session: c.origin,
		ChatProps: chatProps, ThreadProps: threadProps, Members: members})
	if err != nil {
		return model.Conversation{}, nil, err
	}
	var ids []string
	for i := range evs {
		if evs[i].Author.Kind == model.AuthorAgent {
			ids = append(ids, wire.EventID(evs[i].Conv, evs[i].Seq))
		}
	}
	return conv, ids, nil
}
