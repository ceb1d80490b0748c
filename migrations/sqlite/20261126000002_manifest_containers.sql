-- Objects that list other objects (a PDF extraction's JSON manifest naming
-- its images): deleted only after everything before them in the manifest.
ALTER TABLE erasure_manifest_objects
    ADD COLUMN container integer NOT NULL DEFAULT 0 CHECK (container IN (0, 1));
