// This file is part of Moodle - https://moodle.org/
//
// Moodle is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// Moodle is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with Moodle.  If not, see <https://www.gnu.org/licenses/>.

/**
 * At a distd center: Moodle's Reply (which opens an in-page form that calls a web service, and
 * that would write to the read-only replica) and Add discussion topic lead to the plugin's form;
 * the author's pending posts move next to the post they answer.
 *
 * Plain AMD without imports, so amd/build/capture.min.js is this file as it is.
 *
 * @module     local_distd/capture
 * @copyright  2026 distd
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
define([], function() {
    /**
     * The form for a reply or a new discussion.
     *
     * @param {string} formurl local/distd/post.php
     * @param {string} name reply or forum
     * @param {number} id the post replied to, or the forum
     * @returns {string}
     */
    var formFor = function(formurl, name, id) {
        return formurl + '?' + name + '=' + encodeURIComponent(id);
    };

    /**
     * The number after name= in a link to mod/forum/post.php, or 0.
     *
     * @param {string} href
     * @param {string} name
     * @returns {number}
     */
    var paramOf = function(href, name) {
        if (!href || href.indexOf('/mod/forum/post.php') === -1) {
            return 0;
        }
        var m = new RegExp('[?&]' + name + '=(\\d+)').exec(href);
        return m ? parseInt(m[1], 10) : 0;
    };

    /**
     * Sends clicks on Reply and Add discussion topic to the plugin's form, before Moodle's own
     * handlers (capture phase) can open the in-page form.
     *
     * @param {object} config formurl, forum
     */
    var capture = function(config) {
        document.addEventListener('click', function(e) {
            var target = e.target && e.target.closest ? e.target : null;
            if (!target) {
                return;
            }
            var link = target.closest('a[href], button[data-post-id]');
            if (!link) {
                return;
            }
            var href = link.getAttribute('href') || '';
            var reply = paramOf(href, 'reply');
            if (!reply && link.getAttribute('data-action') === 'collapsible-link' && link.getAttribute('data-post-id')) {
                reply = parseInt(link.getAttribute('data-post-id'), 10);
            }
            var forum = paramOf(href, 'forum');
            if (!forum && href === '#collapseAddForm') {
                forum = config.forum;
            }
            if (!reply && !forum) {
                return;
            }
            e.preventDefault();
            e.stopImmediatePropagation();
            window.location.href = reply ? formFor(config.formurl, 'reply', reply) : formFor(config.formurl, 'forum', forum);
        }, true);
    };

    /**
     * Puts each pending reply right after its parent post (inside its replies, when the layout
     * has them), and pending new discussions above the discussion list; what finds no place stays
     * at the end of the page.
     */
    var place = function() {
        var list = document.querySelector('[data-region="local-distd-pending-list"]');
        if (!list) {
            return;
        }
        var posts = list.querySelectorAll('[data-region="local-distd-pending"]');
        Array.prototype.forEach.call(posts, function(post) {
            var parentid = post.getAttribute('data-parent');
            if (post.getAttribute('data-kind') === 'reply' && parentid !== '0') {
                var parent = document.querySelector('article[data-post-id="' + parentid + '"]');
                if (parent) {
                    var replies = parent.querySelector('[data-region="replies-container"]');
                    if (replies && replies.closest('article') === parent) {
                        replies.appendChild(post);
                    } else {
                        parent.parentNode.insertBefore(post, parent.nextSibling);
                    }
                    return;
                }
            }
            var discussions = document.querySelector('[data-region="discussion-list-container"], .discussion-list');
            if (post.getAttribute('data-kind') === 'discussion' && discussions) {
                discussions.parentNode.insertBefore(post, discussions);
                return;
            }
            var discussion = document.querySelector('[data-content="forum-discussion"]');
            if (discussion) {
                discussion.appendChild(post);
            }
        });
    };

    return {
        /**
         * Starts capturing and places the pending posts.
         *
         * @param {object} config formurl (local/distd/post.php), forum (this page's forum id)
         */
        init: function(config) {
            capture(config);
            place();
        }
    };
});
