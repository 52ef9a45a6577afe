-- Hardening (issue 10): tokens get an id, so that an operator can revoke one
-- (POST /v1/admin/tokens/{id}/revoke) without ever seeing or sending the token itself.
ALTER TABLE tokens ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE tokens ADD CONSTRAINT tokens_id_key UNIQUE (id);
