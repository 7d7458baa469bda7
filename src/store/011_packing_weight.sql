-- Weighing (称重): the parcel's weight when it was packed, in grams (NULL when
-- it was not weighed). Sent with the shipment (Shop API v1.1 weight_g) and
-- printed on the handover manifest.
ALTER TABLE packings ADD COLUMN weight_g INTEGER CHECK (weight_g IS NULL OR weight_g > 0);
