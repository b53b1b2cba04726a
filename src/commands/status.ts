// STATUS (spec 1.1.0): the plugin is ready when its IPAM is; vnet itself needs nothing running.
import { callIpam } from './ipam.js';
import { hasIpam, type StatusRequest } from './request.js';

export async function status(req: StatusRequest): Promise<void> {
  if (hasIpam(req.conf)) await callIpam(req, req.conf, 'STATUS');
}
