-- Objects that list other objects (a PDF extraction's JSON manifest naming
-- its images). Deletion removes them only after everything before them in
-- the manifest's order, so that a crash never leaves images that nothing
-- names any more.
ALTER TABLE erasure_manifest_objects
    ADD COLUMN container boolean NOT NULL DEFAULT false;
