package postgres

// clusterSchema is the schema step that adds what several nodes share
// besides the store proper: leases, agent presence, the routing view of
// conversations, v2 poll times and parked notices.
//
// conv_routing mirrors the state, agent, department and owner of every
// queued or open conversation (closed ones are removed), kept by a trigger
// on convs so that every writer keeps it true without knowing of it; the
// trigger writes only when one of those fields changed, so that a message
// (which rewrites its conversation's row) costs a JSON parse, not a write.
const clusterSchema = `
CREATE TABLE cluster_leases (
	name       text COLLATE "C" PRIMARY KEY,
	node       text NOT NULL,
	expires_at timestamptz NOT NULL
);
CREATE TABLE agent_sessions (
	agent      text COLLATE "C" NOT NULL,
	node       text COLLATE "C" NOT NULL,
	sessions   integer NOT NULL,
	expires_at timestamptz NOT NULL,
	PRIMARY KEY (agent, node)
);
CREATE TABLE agent_status (
	agent     text COLLATE "C" PRIMARY KEY,
	accepting boolean NOT NULL,
	at        timestamptz NOT NULL
);
CREATE TABLE v2_polls (
	conv text COLLATE "C" PRIMARY KEY,
	at   timestamptz NOT NULL
);
CREATE TABLE cluster_notices (
	id      bigserial PRIMARY KEY,
	payload text NOT NULL,
	at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE conv_routing (
	id         text COLLATE "C" PRIMARY KEY,
	state      text NOT NULL,
	agent      text COLLATE "C" NOT NULL,
	department text COLLATE "C" NOT NULL,
	owner      text NOT NULL,
	created_at timestamptz NOT NULL
);
CREATE INDEX conv_routing_open ON conv_routing (agent) WHERE state = 'open';
CREATE INDEX conv_routing_queued ON conv_routing (created_at, id) WHERE state = 'queued';
CREATE FUNCTION chatgate_conv_routing() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	n jsonb := convert_from(NEW.data, 'UTF8')::jsonb;
	o jsonb;
BEGIN
	IF TG_OP = 'UPDATE' THEN
		o := convert_from(OLD.data, 'UTF8')::jsonb;
		IF o->'state' IS NOT DISTINCT FROM n->'state' AND o->'agent' IS NOT DISTINCT FROM n->'agent'
			AND o->'department' IS NOT DISTINCT FROM n->'department' THEN
			RETURN NULL;
		END IF;
	END IF;
	IF n->>'state' IN ('open', 'queued') THEN
		INSERT INTO conv_routing (id, state, agent, department, owner, created_at)
		VALUES (NEW.id, n->>'state', coalesce(n->>'agent', ''), coalesce(n->>'department', ''),
			coalesce(n->>'owner', ''), (n->>'created_at')::timestamptz)
		ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, agent = EXCLUDED.agent,
			department = EXCLUDED.department, owner = EXCLUDED.owner;
	ELSE
		DELETE FROM conv_routing WHERE id = NEW.id;
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER convs_routing AFTER INSERT OR UPDATE ON convs
	FOR EACH ROW EXECUTE FUNCTION chatgate_conv_routing();
INSERT INTO conv_routing (id, state, agent, department, owner, created_at)
SELECT id, d->>'state', coalesce(d->>'agent', ''), coalesce(d->>'department', ''), coalesce(d->>'owner', ''),
	(d->>'created_at')::timestamptz
FROM (SELECT id, convert_from(data, 'UTF8')::jsonb AS d FROM convs) AS c
WHERE d->>'state' IN ('open', 'queued');
`
