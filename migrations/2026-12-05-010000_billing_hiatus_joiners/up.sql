-- A fan who joins while the creator's page is on hiatus (issue 14) is charged first when the
-- hiatus ends (the subscription's `start_at`), with access at once, like the members whose
-- charges the hiatus skips; `hiatus_id` counts them in the hiatus' figures.
ALTER TABLE memberships
    ADD COLUMN hiatus_id BIGINT REFERENCES billing_hiatuses (id) ON DELETE SET NULL;
CREATE INDEX memberships_hiatus_idx ON memberships (hiatus_id) WHERE hiatus_id IS NOT NULL;
